"""Large galleries: recall@10, latency, memory and start-up of flat, IVF and HNSW.

    .venv/bin/python benchmarks/large_index.py --entries 1000000 --dim 512

The gallery is synthetic but shaped like re-ID embeddings: ``--entries / 10``
identities in a 64-dimensional subspace, each with 10 entries scattered around its
centre (cosine about 0.8), and ``--queries`` fresh samples of random identities as
queries (see ``Gallery``). Isotropic random vectors would be the worst case for
approximate search, well-separated clusters the best; neither is a gallery.

Every index is the service's own (``VectorIndex.build`` with the ``IndexSpec`` the
settings make), so each row names the ``REID_*`` values that reproduce it. For each
structure: build time; snapshot size per entry and resident memory added per entry;
then for each search setting (``REID_IVF_NPROBE`` / ``REID_HNSW_EF_SEARCH``, which
are applied when a snapshot is loaded) the snapshot load time (a replica's start-up
from its snapshot, less the model), p50/p99 of one query's search (k = 64, the
service's first fetch) and recall@10 against the exact flat index. Single queries,
as ``POST /query`` issues them; FAISS uses every core for each. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from service_common import load_average

from app.index.snapshot import load_snapshot, write_snapshot
from app.index.spec import IndexSpec, IndexType
from app.index.vector_index import IdVectorChunks, VectorIndex

CHUNK = 50_000
PER_IDENTITY = 10
RANK = 64
K = 64


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Gallery:
    """Clustered unit vectors, generated chunk by chunk from fixed seeds.

    Identities live in a ``RANK``-dimensional subspace (embedding networks use few
    effective dimensions), so their neighbourhoods crowd as real ones do; each entry is
    its identity's centre plus noise in that subspace (cosine to the centre about 0.8)
    plus a little noise in every dimension.
    """

    def __init__(self, entries: int, dim: int) -> None:
        self.entries, self.dim = entries, dim
        basis = np.random.default_rng(0).standard_normal((dim, RANK))
        self.basis = np.linalg.qr(basis)[0].astype(np.float32)  # (dim, RANK), orthonormal

    def centres(self, identities: np.ndarray) -> np.ndarray:
        rows = [np.random.default_rng([1, int(i)]).standard_normal(RANK) for i in identities]
        centres = np.asarray(rows, dtype=np.float32)
        return centres / np.linalg.norm(centres, axis=1, keepdims=True)

    def entries_of(self, identities: np.ndarray, seed: list[int]) -> np.ndarray:
        rng = np.random.default_rng(seed)
        count = len(identities)
        inner = self.centres(identities) + (0.75 / np.sqrt(RANK)) * rng.standard_normal(
            (count, RANK), dtype=np.float32
        )
        vectors = inner @ self.basis.T + (0.1 / np.sqrt(self.dim)) * rng.standard_normal(
            (count, self.dim), dtype=np.float32
        )
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def chunks(self) -> IdVectorChunks:
        for start in range(0, self.entries, CHUNK):
            count = min(CHUNK, self.entries - start)
            identities = np.arange(start, start + count) // PER_IDENTITY
            vectors = self.entries_of(identities, [3, start])
            yield np.arange(start + 1, start + count + 1, dtype=np.int64), vectors


def searched(index: VectorIndex, queries: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    results, times = [], []
    for query in queries:
        started = time.perf_counter()
        _scores, ids = index.search(query, K)
        times.append((time.perf_counter() - started) * 1000)
        results.append(ids[:10])
    return results, times


def recall(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True))
    return hits / (10 * len(truth))


def measure(
    gallery: Gallery,
    spec: IndexSpec,
    settings: list[tuple[str, IndexSpec]],
    queries: np.ndarray,
    truth: list[np.ndarray] | None,
    work: Path,
) -> tuple[list[dict], list[np.ndarray]]:
    before = rss_bytes()
    started = time.perf_counter()
    built = VectorIndex.build(gallery.dim, spec, gallery.chunks())
    build_s = time.perf_counter() - started
    added = rss_bytes() - before
    path = work / f"{spec.index_type}.snapshot"
    write_snapshot(path, built, "bench", 0)
    del built
    rows, exact = [], []
    for label, searching in settings:
        started = time.perf_counter()
        index, _ = load_snapshot(path, searching)
        load_s = time.perf_counter() - started
        found, times = searched(index, queries)
        if truth is None:
            exact = found
        rows.append(
            {
                "index": label,
                "build_s": round(build_s, 1),
                "snapshot_bytes_per_entry": round(path.stat().st_size / gallery.entries, 1),
                "rss_bytes_per_entry": round(added / gallery.entries, 1),
                "snapshot_load_s": round(load_s, 2),
                "p50_ms": round(float(np.percentile(times, 50)), 2),
                "p99_ms": round(float(np.percentile(times, 99)), 2),
                "recall_at_10": round(recall(found, truth if truth is not None else found), 4),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        del index
    path.unlink()
    return rows, exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--nlist", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--kinds", nargs="+", default=["flat", "ivf", "hnsw"])
    args = parser.parse_args()
    if "flat" not in args.kinds:
        parser.error("--kinds must include flat: it is the exact reference for recall")
    gallery = Gallery(args.entries, args.dim)
    identities = np.random.default_rng(4).integers(0, args.entries // PER_IDENTITY, args.queries)
    queries = gallery.entries_of(identities, [5])
    load_before = load_average()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="reid-large-index-") as scratch:
        work = Path(scratch)
        flat = IndexSpec(IndexType.FLAT, index_use_gpu=False)
        flat_rows, truth = measure(gallery, flat, [("flat", flat)], queries, None, work)
        rows += flat_rows
        if "ivf" in args.kinds:
            for nlist in args.nlist:
                spec = IndexSpec(IndexType.IVF, ivf_nlist=nlist, index_use_gpu=False)
                settings = [
                    (f"ivf nlist={nlist} nprobe={n}", replace(spec, ivf_nprobe=n))
                    for n in args.nprobe
                ]
                rows += measure(gallery, spec, settings, queries, truth, work)[0]
        if "hnsw" in args.kinds:
            spec = IndexSpec(
                IndexType.HNSW,
                hnsw_m=args.hnsw_m,
                hnsw_ef_construction=args.ef_construction,
                index_use_gpu=False,
            )
            settings = [
                (
                    f"hnsw m={args.hnsw_m} efc={args.ef_construction} ef={ef}",
                    replace(spec, hnsw_ef_search=ef),
                )
                for ef in args.ef_search
            ]
            rows += measure(gallery, spec, settings, queries, truth, work)[0]
    print(
        json.dumps(
            {
                "entries": args.entries,
                "dim": args.dim,
                "queries": args.queries,
                "rows": rows,
                "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
                "load_average_before": round(load_before, 2),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
