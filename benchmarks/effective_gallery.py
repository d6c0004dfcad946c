"""What the open-set decision adds to a query: counting the effective gallery's identities.

    .venv/bin/python benchmarks/effective_gallery.py --sizes 10000 100000 [--database-url URL]

For each size the gallery table is bulk-loaded directly (10 entries per identity, 6
cameras, capture times spread over 30 days, ``--dim``-d embeddings so rows are as wide
as the service's), then ``EntryStore.admitted_counts`` (the statement every calibrated
``POST /query`` runs beside its FAISS search) is timed ``--repeats`` times with no
filter, with a camera excluded, and with a one-week time window. Without
``--database-url`` (an empty database) an SQLite file in a temporary directory is used.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from service_common import entry_row
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.orm import sessionmaker

from app.db.engine import upgrade_to_head
from app.db.models import GalleryEntry
from app.gallery.admitted import AdmittedCountCache
from app.gallery.store import AdmittedCounts, EntryStore

ENTRIES_PER_IDENTITY = 10
DAYS = 30
CHUNK = 5_000
VERSION = "bench-effective-gallery"
START = datetime(2026, 1, 1, tzinfo=UTC)


def bulk_load(url: str, dim: int, target: int) -> None:
    engine = create_engine(url)
    upgrade_to_head(engine)
    with engine.begin() as connection:
        present = connection.scalar(select(func.count()).select_from(GalleryEntry)) or 0
    vector = np.zeros(dim, dtype=np.float32)
    rng = np.random.default_rng(0)
    for start in range(present, target, CHUNK):
        count = min(CHUNK, target - start)
        offsets = rng.uniform(0, DAYS * 86400, count)
        rows = [
            {
                **entry_row(
                    start + i, f"person-{(start + i) // ENTRIES_PER_IDENTITY:07d}", vector, VERSION
                ),
                "captured_at": (START + timedelta(seconds=float(offsets[i]))).replace(tzinfo=None),
            }
            for i in range(count)
        ]
        with engine.begin() as connection:
            connection.execute(insert(GalleryEntry), rows)
    engine.dispose()


def timed(call: Callable[[], AdmittedCounts], repeats: int) -> dict[str, float | int]:
    samples, identities = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        identities = call().identities
        samples.append((time.perf_counter() - started) * 1000.0)
    return {
        "identities": identities,
        "median_ms": round(statistics.median(samples), 3),
        "max_ms": round(max(samples), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'reid.db'}"
        engine = create_engine(url)
        store = EntryStore(sessionmaker(engine), model_version=VERSION, dim=args.dim)
        week = {
            "captured_after": START + timedelta(days=7),
            "captured_before": START + timedelta(days=14),
        }
        report = []
        for size in sorted(args.sizes):
            bulk_load(url, args.dim, size)
            cache = AdmittedCountCache(store)  # rows were loaded behind the change log
            report.append(
                {
                    "entries": size,
                    "no_filter": timed(store.admitted_counts, args.repeats),
                    "camera_excluded": timed(
                        lambda: store.admitted_counts(exclude_camera="cam-0"), args.repeats
                    ),
                    "one_week": timed(lambda: store.admitted_counts(**week), args.repeats),
                    "no_filter_cached": timed(cache.counts, args.repeats),
                }
            )
        engine.dispose()
    print(json.dumps({"backend": url.split(":", 1)[0], "dim": args.dim, "sizes": report}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
