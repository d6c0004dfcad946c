"""/query latency at growing gallery sizes, next to raw embed + raw search time.

    .venv/bin/python benchmarks/service_query.py --arch resnet18 --sizes 10000 100000 1000000

For each size the gallery table is bulk-loaded directly (random unit vectors under
the checkpoint's model version, 10 entries per identity, 6 cameras; no crops) up
to that size, then ``python -m app`` (SQLite, flat index) is started twice:

1. without a snapshot: start-up rebuilds the index from the database; resident
   memory is read from /proc; ``--queries`` sequential POST /query requests with
   distinct synthetic JPEGs give client-side p50/p99 and the server's own timing
   breakdown; a graceful stop writes the snapshot;
2. with that snapshot: start-up time only.

Raw references, in this process with the server stopped and, like the service, from
a worker thread: ``ReIDNet.embed`` of one preprocessed crop, and a FAISS
``IndexFlatIP`` search (k=64, the service's first fetch) over the same vectors.
Memory per entry is (RSS at size - RSS of an empty gallery) / size.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import faiss
import httpx
import numpy as np
import torch
from service_common import (
    BenchModel,
    LiveServer,
    entry_row,
    in_worker_thread,
    load_average,
    person_jpegs,
    prepare_model,
    warm_up,
)
from sqlalchemy import create_engine, func, insert, select

from app.db.engine import upgrade_to_head
from app.db.models import GalleryEntry
from model.compute import SWITCHES
from model.preprocessing import decode_image, preprocess

ENTRIES_PER_IDENTITY = 10
CHUNK = 10_000
WARMUP_QUERIES = 10


def vectors_for(start: int, count: int, dim: int) -> np.ndarray:
    """Deterministic unit vectors for rows start..start+count (same for DB and raw index)."""
    rng = np.random.default_rng([start, count, dim])
    vectors = rng.standard_normal((count, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def bulk_load(url: str, version: str, dim: int, target: int) -> float:
    """Grow the gallery table to ``target`` rows; returns seconds spent."""
    engine = create_engine(url)
    started = time.perf_counter()
    upgrade_to_head(engine)
    with engine.begin() as connection:
        present = connection.scalar(select(func.count()).select_from(GalleryEntry))
    now = datetime.now(UTC).replace(tzinfo=None)
    for start in range(present, target, CHUNK):
        count = min(CHUNK, target - start)
        vectors = vectors_for(start, count, dim)
        rows = [
            {
                **entry_row(
                    start + i,
                    f"person-{(start + i) // ENTRIES_PER_IDENTITY:07d}",
                    vectors[i],
                    version,
                ),
                "created_at": now,
            }
            for i in range(count)
        ]
        with engine.begin() as connection:
            connection.execute(insert(GalleryEntry), rows)
    engine.dispose()
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run_queries(base_url: str, crops: list[bytes]) -> dict[str, float]:
    latencies, embeds, searches = [], [], []
    with httpx.Client(base_url=base_url, timeout=600) as client:
        for crop in crops[:WARMUP_QUERIES]:  # see warm_up() in service_common
            client.post("/query", files={"image": ("w.jpg", crop, "image/jpeg")})
        for crop in crops:
            started = time.perf_counter()
            response = client.post("/query", files={"image": ("q.jpg", crop, "image/jpeg")})
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"query failed: {response.status_code} {response.text}")
            timings = response.json()["timings"]
            embeds.append(timings["embed_ms"])
            searches.append(timings["search_ms"])
    return {
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "server_embed_p50_ms": round(statistics.median(embeds), 1),
        "server_search_p50_ms": round(statistics.median(searches), 1),
        "server_search_p99_ms": round(percentile(searches, 99), 1),
    }


def raw_embed_ms(bench: BenchModel, crops: list[bytes]) -> float:
    warm_up(bench, 32)
    network, compute = bench.network, bench.compute
    size = network.config.input_size
    times = []
    with torch.inference_mode(), compute.autocast():
        for crop in crops[:WARMUP_QUERIES]:
            network.embed(compute.to_device(preprocess(decode_image(crop), size).unsqueeze(0)))
        for crop in crops:
            tensor = compute.to_device(preprocess(decode_image(crop), size).unsqueeze(0))
            started = time.perf_counter()
            network.embed(tensor)
            times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def raw_search_ms(size: int, dim: int, queries: int) -> float:
    index = faiss.IndexFlatIP(dim)
    for start in range(0, size, CHUNK):
        index.add(vectors_for(start, min(CHUNK, size - start), dim))
    probes = vectors_for(10**9, queries, dim)
    for probe in probes[:3]:
        index.search(probe.reshape(1, -1), 64)
    times = []
    for probe in probes:
        started = time.perf_counter()
        index.search(probe.reshape(1, -1), 64)
        times.append((time.perf_counter() - started) * 1000)
    del index
    return round(statistics.median(times), 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--amp", choices=SWITCHES, default="auto", help="REID_AMP of both sides")
    args = parser.parse_args(argv)

    bench = prepare_model(args.work_dir, args.arch, "reid-bench-query-", args.amp)
    work, card = bench.work, bench.card
    dim = card.embedding_dim
    data_dir = work / "data"
    database = data_dir / "reid.db"
    url = f"sqlite:///{database}"
    settings = bench.server_settings(data_dir, REID_DATABASE_URL=url)
    crops = person_jpegs(args.queries, offset=5_000_000)
    data_dir.mkdir(parents=True, exist_ok=True)
    bulk_load(url, card.version, dim, 0)
    empty = LiveServer(settings, work / "server-empty.log")
    empty.wait_ready()
    baseline_rss = empty.rss_bytes()
    empty.stop()

    results = []
    for size in sorted(args.sizes):
        load_seconds = bulk_load(url, card.version, dim, size)
        snapshot = data_dir / "index.snapshot"
        snapshot.unlink(missing_ok=True)
        load = load_average()
        server = LiveServer(settings, work / f"server-{size}.log")
        rebuild_s = server.wait_ready()
        rss = server.rss_bytes()
        latency = run_queries(server.base_url, crops)
        stop_s = server.stop()
        again = LiveServer(settings, work / f"server-{size}-snapshot.log")
        snapshot_s = again.wait_ready()
        again.stop()
        result = {
            "entries": size,
            **latency,
            "raw_embed_ms": in_worker_thread(raw_embed_ms, bench, crops[:50]),
            "raw_search_ms": in_worker_thread(raw_search_ms, size, dim, 50),
            "startup_rebuild_s": round(rebuild_s, 1),
            "startup_snapshot_s": round(snapshot_s, 1),
            "shutdown_with_snapshot_s": round(stop_s, 1),
            "rss_gib": round(rss / 2**30, 2),
            "rss_bytes_per_entry": round((rss - baseline_rss) / size),
            "db_bytes_per_entry": round(database.stat().st_size / size),
            "snapshot_bytes_per_entry": round(snapshot.stat().st_size / size),
            "bulk_load_s": round(load_seconds, 1),
            "load_avg_at_start": round(load, 2),
        }
        results.append(result)
        print(json.dumps(result), flush=True)
    print(
        json.dumps(
            {
                "arch": args.arch,
                "embedding_dim": dim,
                "queries_per_size": args.queries,
                "baseline_rss_gib": round(baseline_rss / 2**30, 2),
                "torch_threads": torch.get_num_threads(),
                "faiss_threads": faiss.omp_get_max_threads(),
                "machine": platform.processor() or platform.machine(),
                "bf16": bench.compute.bf16,
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
