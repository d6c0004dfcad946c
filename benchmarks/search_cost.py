"""/query's search step on a Market-shaped gallery: the ranking now, the old re-scoring, FAISS.

    .venv/bin/python benchmarks/search_cost.py [--entries 15913 --crowd 2798 --queries 300]

The gallery table is bulk-loaded directly (no crops): ``--crowd`` entries of one identity
"0000" (Market-1501's distractors: 2,798 of its 15,913 gallery crops) as unrelated
random directions, and the rest as ``--identities`` (750) clustered identities,
on 6 cameras. The flat index is built from the same vectors. Each query is a noisy copy
of a random entry, asking for the top 10 identities. All queries run on one worker
thread, as the service's reused ``asyncio.to_thread`` pool runs them (a fresh thread per
query would pay for a new OpenMP team each time). Per query:

* ``faiss``: ``IndexFlatIP.search`` of rank's first fetch (k=80) alone;
* ``now``: ``GallerySearch.rank`` (FAISS, the candidates' labels, the tally);
* ``old``, in a second pass: the same, then what the old ranking did on top: read every
  row of the chosen identities (``identity IN ...``, embeddings included) and re-score
  them. "0000" holds so many random entries that it is among any query's top 10.

Without ``--database-url`` (an empty database) an SQLite file in a temporary directory
is used. The raw FAISS call runs on one OpenMP thread, as the service's searches do
(``app/index/vector_index.py``).
Prints JSON: p50/p99 in ms per path, and the ratios of the p50s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import faiss
import numpy as np
from service_common import entry_row, in_worker_thread, load_average
from sqlalchemy import insert, select

from app.db.engine import create_db_engine, session_factory, upgrade_to_head
from app.db.models import GalleryEntry
from app.gallery.live_index import LiveIndex
from app.gallery.search import INITIAL_NEIGHBOURS, NEIGHBOUR_FACTOR, GallerySearch, QueryFilters
from app.gallery.store import EntryStore
from app.index.spec import IndexSpec, IndexType
from app.telemetry import Telemetry

CHUNK = 5_000
VERSION = "bench-search-cost"
WARMUP_QUERIES = 10
TOP_K = 10
T = TypeVar("T")


def gallery(entries: int, crowd: int, identities: int, dim: int) -> tuple[list[str], np.ndarray]:
    """Identity per row and unit vectors: the crowd first, then the clustered identities."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((identities, dim), dtype=np.float32)
    owners = rng.integers(0, identities, size=entries - crowd)
    vectors = np.concatenate(
        [
            rng.standard_normal((crowd, dim), dtype=np.float32),
            centres[owners] + 0.8 * rng.standard_normal((len(owners), dim), dtype=np.float32),
        ]
    )
    names = ["0000"] * crowd + [f"{owner + 1:06d}" for owner in owners]
    return names, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def load(url: str, names: list[str], vectors: np.ndarray) -> np.ndarray:
    """Insert the rows; returns their ids."""
    engine = create_db_engine(url)
    upgrade_to_head(engine)
    for start in range(0, len(names), CHUNK):
        rows = [
            entry_row(i, names[i], vectors[i], VERSION)
            for i in range(start, min(start + CHUNK, len(names)))
        ]
        with engine.begin() as connection:
            connection.execute(insert(GalleryEntry), rows)
    with engine.connect() as connection:
        ids = connection.scalars(select(GalleryEntry.id).order_by(GalleryEntry.id)).all()
    engine.dispose()
    return np.asarray(ids, dtype=np.int64)


def rescore_old_way(store: EntryStore, query: np.ndarray, identities: list[str]) -> float:
    """What the old ranking added: every row of the chosen identities, re-scored."""
    with store.sessions() as session:
        rows = (
            session.connection()
            .execute(
                select(
                    GalleryEntry.id,
                    GalleryEntry.identity,
                    GalleryEntry.camera,
                    GalleryEntry.captured_at,
                    GalleryEntry.embedding,
                    GalleryEntry.model_version,
                ).where(GalleryEntry.identity.in_(identities))
            )
            .all()
        )
    kept = [row for row in rows if row[5] == store.model_version]
    return float((store.vectors_of(row[4] for row in kept) @ query).max())


def old_way(search: GallerySearch, store: EntryStore, query: np.ndarray) -> float:
    """Rank, then re-score the chosen identities as the old ranking did."""
    chosen = [match.identity for match in search.rank(query, TOP_K, QueryFilters())]
    return rescore_old_way(store, query, chosen)


def timed(function: Callable[..., T], *args: Any) -> tuple[float, T]:
    """Milliseconds taken, and the result."""
    started = time.perf_counter()
    result = function(*args)
    return (time.perf_counter() - started) * 1000, result


def measure(url: str, args: argparse.Namespace) -> dict[str, object]:
    names, vectors = gallery(args.entries, args.crowd, args.identities, args.dim)
    ids = load(url, names, vectors)
    store = EntryStore(session_factory(create_db_engine(url)), model_version=VERSION, dim=args.dim)
    live = LiveIndex(args.dim, IndexSpec(IndexType.FLAT), Telemetry())
    live.add(ids, vectors)
    search = GallerySearch(store=store, live=live, telemetry=Telemetry())
    raw = faiss.IndexFlatIP(args.dim)
    raw.add(vectors)
    rng = np.random.default_rng(1)
    picks = rng.integers(0, args.entries, size=args.queries + WARMUP_QUERIES)
    queries = vectors[picks] + 0.05 * rng.standard_normal((len(picks), args.dim), np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    filters = QueryFilters()
    times: dict[str, list[float]] = {"faiss": [], "now": [], "old": []}

    first_fetch = max(INITIAL_NEIGHBOURS, TOP_K * NEIGHBOUR_FACTOR)  # rank's first search

    def every_query() -> int:
        faiss.omp_set_num_threads(1)  # the raw reference searches as the service does
        crowded_queries = 0
        for number, query in enumerate(queries):
            faiss_ms, _ = timed(raw.search, query.reshape(1, -1), first_fetch)
            now_ms, ranked = timed(search.rank, query, TOP_K, filters)
            if number >= WARMUP_QUERIES:
                times["faiss"].append(faiss_ms)
                times["now"].append(now_ms)
                crowded_queries += any(match.identity == "0000" for match in ranked)
        # A pass of its own: the old path's reads would evict the others' data from cache.
        for number, query in enumerate(queries):
            old_ms, _ = timed(old_way, search, store, query)
            if number >= WARMUP_QUERIES:
                times["old"].append(old_ms)
        return crowded_queries

    crowd_chosen = in_worker_thread(every_query)
    summary = {
        path: {
            "p50_ms": round(float(np.percentile(t, 50)), 3),
            "p99_ms": round(float(np.percentile(t, 99)), 3),
        }
        for path, t in times.items()
    }
    p50 = {path: float(np.percentile(t, 50)) for path, t in times.items()}
    return {
        "entries": args.entries,
        "crowd_entries": args.crowd,
        "identities": args.identities,
        "dim": args.dim,
        "queries": args.queries,
        "queries_with_crowd_in_top_10": crowd_chosen,
        "search": summary,
        "old_over_now_p50": round(p50["old"] / p50["now"], 2),
        "now_over_faiss_p50": round(p50["now"] / p50["faiss"], 2),
        "load_average": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=15_913)
    parser.add_argument("--crowd", type=int, default=2_798, help="entries of identity 0000")
    parser.add_argument(
        "--identities", type=int, default=750, help="clustered identities beside the crowd"
    )
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--database-url", help="an empty database (default: SQLite, temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite:///{Path(directory) / 'gallery.db'}"
        print(json.dumps(measure(url, args), indent=2))


if __name__ == "__main__":
    main()
