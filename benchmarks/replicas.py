"""Replicas on one PostgreSQL: propagation lag, query throughput, start-up time.

    .venv/bin/python benchmarks/replicas.py --part lag --enrollments 200
    .venv/bin/python benchmarks/replicas.py --part throughput --seconds 20
    .venv/bin/python benchmarks/replicas.py --part startup --sizes 100000 1000000

Every part starts real ``python -m app`` processes (resnet18, untrained: speed does not
depend on weight values) on a fresh database of the local server
(``REID_TEST_POSTGRES_URL``, default the local one), sharing one crop store.

* lag: three replicas; ``--enrollments`` sequential POST /gallery through A. After each
  201 the change log's head is read, and B's and C's /metrics are polled until their
  applied position reaches it: the time from A's answer to B (and C) applying it.
* throughput: 1, 2 and 3 replicas; ``--clients`` threads send POST /query round-robin
  to the replicas for ``--seconds``; queries per second, side by side in one run.
* startup: the gallery bulk-loaded to each size (random unit vectors; one change-log
  row per entry, as the migration backfills), then one replica started three ways:
  rebuild (no snapshot), snapshot with the log fully applied, snapshot plus a replay of
  ``--replay`` changes committed while it was stopped. Seconds until /ready is 200.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import psycopg
from service_common import (
    BenchModel,
    LiveServer,
    entry_row,
    load_average,
    person_jpegs,
    prepare_model,
)
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from app.db.engine import upgrade_to_head
from app.db.models import GalleryChange, GalleryEntry

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CHUNK = 10_000
APPLIED = re.compile(r"^reid_changes_applied_seq (\S+)$", re.MULTILINE)


def fresh_database(server: str) -> str:
    """A new empty database on the server; returns its URL."""
    name = f"reid_bench_{uuid.uuid4().hex[:10]}"
    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    upgrade_to_head(create_engine(url))
    return url


def drop_database(server: str, url: str) -> None:
    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def start(bench: BenchModel, work: Path, url: str, name: str, **settings: str) -> LiveServer:
    return LiveServer(
        bench.server_settings(
            work / name,
            REID_DATABASE_URL=url,
            REID_CROPS_DIR=str(work / "crops"),
            REID_REPLICA_ID=name,
            REID_BATCH_MAX_WAIT_MS="1",
            **settings,
        ),
        work / f"{name}.log",
    )


def applied(client: httpx.Client) -> float:
    match = APPLIED.search(client.get("/metrics").text)
    return float(match.group(1)) if match else -1.0


def head(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.max(GalleryChange.seq))) or 0)
    finally:
        engine.dispose()


def part_lag(bench: BenchModel, work: Path, url: str, enrollments: int) -> dict:
    servers = {name: start(bench, work, url, name) for name in "abc"}
    for server in servers.values():
        server.wait_ready()
    crops = person_jpegs(enrollments)
    lags: dict[str, list[float]] = {"b": [], "c": []}
    engine = create_engine(url)
    try:
        with (
            httpx.Client(base_url=servers["a"].base_url, timeout=60) as a,
            httpx.Client(base_url=servers["b"].base_url, timeout=60) as b,
            httpx.Client(base_url=servers["c"].base_url, timeout=60) as c,
            engine.connect() as connection,
        ):
            followers = {"b": b, "c": c}
            for number, crop in enumerate(crops):
                files = {"images": ("p.jpg", crop, "image/jpeg")}
                response = a.post("/gallery", data={"identity": f"p{number}"}, files=files)
                answered = time.perf_counter()
                assert response.status_code == 201, response.text
                target = connection.scalar(text("SELECT max(seq) FROM gallery_changes"))
                connection.rollback()
                pending = dict(followers)
                while pending:
                    for name, client in list(pending.items()):
                        if applied(client) >= target:
                            lags[name].append((time.perf_counter() - answered) * 1000)
                            del pending[name]
    finally:
        engine.dispose()
        for server in servers.values():
            server.stop()
    every = lags["b"] + lags["c"]
    return {
        "enrollments": enrollments,
        "lag_ms": {
            name: {
                "p50": round(float(np.percentile(values, 50)), 1),
                "p99": round(float(np.percentile(values, 99)), 1),
                "max": round(max(values), 1),
            }
            for name, values in {**lags, "all": every}.items()
        },
    }


def part_throughput(bench: BenchModel, work: Path, url: str, seconds: float, clients: int) -> dict:
    servers = [start(bench, work, url, name) for name in ("t1", "t2", "t3")]
    for server in servers:
        server.wait_ready()
    with httpx.Client(base_url=servers[0].base_url, timeout=120) as client:
        for number, crop in enumerate(person_jpegs(200)):
            files = {"images": ("g.jpg", crop, "image/jpeg")}
            client.post("/gallery", data={"identity": f"g{number // 2}"}, files=files)
    queries = person_jpegs(64, offset=10_000)
    results = {}
    try:
        for replicas in (1, 2, 3):
            bases = [server.base_url for server in servers[:replicas]]
            done = [0] * clients
            stop_at = time.perf_counter() + seconds

            def send(
                worker: int,
                bases: list[str] = bases,
                done: list[int] = done,
                stop_at: float = stop_at,
            ) -> None:
                with httpx.Client(timeout=120) as client:
                    number = worker
                    while time.perf_counter() < stop_at:
                        base = bases[number % len(bases)]
                        crop = queries[number % len(queries)]
                        files = {"image": ("q.jpg", crop, "image/jpeg")}
                        if client.post(f"{base}/query", files=files).status_code == 200:
                            done[worker] += 1
                        number += 1

            threads = [threading.Thread(target=send, args=(w,)) for w in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            results[str(replicas)] = round(sum(done) / seconds, 2)
    finally:
        for server in servers:
            server.stop()
    return {
        "clients": clients,
        "seconds": seconds,
        "queries_per_s": results,
        "ratio_3_to_1": round(results["3"] / results["1"], 2),
    }


def bulk_load(url: str, version: str, dim: int, start_at: int, count: int) -> float:
    """Add ``count`` entries (and their change-log rows) after id ``start_at``."""
    engine = create_engine(url)
    started = time.perf_counter()
    now = datetime.now(UTC).replace(tzinfo=None)
    for offset in range(start_at, start_at + count, CHUNK):
        size = min(CHUNK, start_at + count - offset)
        rng = np.random.default_rng([offset, dim])
        vectors = rng.standard_normal((size, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = [
            {
                **entry_row(offset + i, f"person-{(offset + i) // 10:07d}", vectors[i], version),
                "id": offset + i + 1,
                "created_at": now,
            }
            for i in range(size)
        ]
        with engine.begin() as connection:
            connection.execute(insert(GalleryEntry), rows)
            connection.execute(
                insert(GalleryChange),
                [{"entry_id": row["id"], "created_at": now} for row in rows],
            )
    with engine.begin() as connection:  # ids were given explicitly: move the sequence on
        connection.execute(
            text("SELECT setval(pg_get_serial_sequence('gallery_entries', 'id'), :n)"),
            {"n": start_at + count},
        )
    engine.dispose()
    return time.perf_counter() - started


def part_startup(bench: BenchModel, work: Path, server: str, sizes: list[int], replay: int) -> dict:
    results = {}
    for size in sizes:
        url = fresh_database(server)
        load_s = bulk_load(url, bench.card.version, bench.card.embedding_dim, 0, size)
        name = f"s{size}"
        row: dict[str, float] = {"bulk_load_s": round(load_s, 1)}
        replica = start(bench, work, url, name)
        row["rebuild_s"] = round(replica.wait_ready(), 2)
        row["rss_mib"] = round(replica.rss_bytes() / 2**20, 1)
        row["stop_with_snapshot_s"] = round(replica.stop(), 2)
        replica = start(bench, work, url, name)
        row["snapshot_s"] = round(replica.wait_ready(), 2)
        replica.stop()
        bulk_load(url, bench.card.version, bench.card.embedding_dim, size, replay)
        replica = start(bench, work, url, name)
        row[f"snapshot_plus_{replay}_changes_s"] = round(replica.wait_ready(), 2)
        with httpx.Client(base_url=replica.base_url, timeout=60) as client:
            startup = client.get("/ready").json()["checks"]["index"]["startup"]
        row["replayed"] = startup["replayed"]
        assert startup["source"] == "snapshot", startup
        replica.stop()
        results[str(size)] = row
        drop_database(server, url)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["lag", "throughput", "startup"], required=True)
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--enrollments", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--replay", type=int, default=10_000)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    bench = prepare_model(args.work_dir, "resnet18", "reid-replicas-", "auto")
    work = bench.work / f"run-{uuid.uuid4().hex[:6]}"
    work.mkdir(parents=True)
    load_before = load_average()
    if args.part == "startup":
        result = part_startup(bench, work, args.server, args.sizes, args.replay)
    else:
        url = fresh_database(args.server)
        try:
            if args.part == "lag":
                result = part_lag(bench, work, url, args.enrollments)
            else:
                result = part_throughput(bench, work, url, args.seconds, args.clients)
        finally:
            drop_database(args.server, url)
    report = {
        "part": args.part,
        "result": result,
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
        "load_average_before": round(load_before, 2),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    text_report = json.dumps(report, indent=2)
    print(text_report)
    if args.output:
        args.output.write_text(text_report + "\n")


if __name__ == "__main__":
    main()
