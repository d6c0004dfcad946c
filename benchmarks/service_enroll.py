"""Enrollment throughput over HTTP, as a ratio to the raw model forward throughput.

    .venv/bin/python benchmarks/service_enroll.py --arch resnet18 --batch-size 32
    .venv/bin/python benchmarks/service_enroll.py --arch resnet50 --batch-size 32 --requests 8

Both numbers come from this machine, the same network and the same batch size:

* raw: ``measure_forward_throughput`` (benchmarks/model_forward.py) on random
  preprocessed tensors in this process, called from the main thread and from a
  worker thread (as the service's batcher calls it); the faster of the two counts;
* HTTP: ``python -m app`` as a subprocess (SQLite, REID_BATCH_MAX_SIZE = batch size);
  ``--clients`` threads each POST /gallery requests of ``--batch-size`` distinct JPEG
  crops, timed from the first request to the last 201. Every image is decoded,
  validated, embedded, written to disk and committed, as in production.

The ratio (HTTP / raw) is the share of the network's speed the service delivers.
Both sides are warmed up first, then ``--rounds`` rounds alternate raw and HTTP
measurements (the idle server costs no CPU meanwhile), so a machine whose load
drifts affects both sides of each ratio alike; the median ratio is reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import torch
from model_forward import measure_forward_throughput
from service_common import (
    LiveServer,
    in_worker_thread,
    load_average,
    person_jpegs,
    prepare_model,
    warm_up,
)

from model.compute import SWITCHES


def enroll_all(base_url: str, batches: list[list[bytes]], clients: int, tag: str) -> float:
    """POST every batch (one identity each) with ``clients`` threads; returns seconds."""

    def post(index: int) -> None:
        files = [
            ("images", (f"{index}_{n}.jpg", data, "image/jpeg"))
            for n, data in enumerate(batches[index])
        ]
        with httpx.Client(base_url=base_url, timeout=3600) as client:
            response = client.post("/gallery", data={"identity": f"{tag}-{index}"}, files=files)
        if response.status_code != 201:
            raise RuntimeError(f"enroll failed: {response.status_code} {response.text}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(post, range(len(batches))))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=32, help="images per request")
    parser.add_argument("--requests", type=int, default=16, help="timed requests")
    parser.add_argument("--clients", type=int, default=2, help="concurrent HTTP clients")
    parser.add_argument("--iterations", type=int, default=10, help="raw forward batches")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/HTTP rounds")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--amp", choices=SWITCHES, default="auto", help="REID_AMP of both sides")
    args = parser.parse_args(argv)

    bench = prepare_model(args.work_dir, args.arch, "reid-bench-enroll-", args.amp)
    network, compute = bench.network, bench.compute
    server = LiveServer(
        bench.server_settings(
            bench.work / f"data-{int(time.time())}",
            REID_BATCH_MAX_SIZE=str(args.batch_size),
        ),
        bench.work / "server.log",
    )
    rounds = []
    try:
        server.wait_ready()
        # Warm both sides to steady speed before anything is timed (see warm_up()).
        warm = [person_jpegs(args.batch_size, offset=10**7 + i * 1000) for i in range(4)]
        enroll_all(server.base_url, warm, args.clients, "warm")
        warm_up(bench, args.batch_size)
        for number in range(args.rounds):
            offset = number * args.requests * args.batch_size
            batches = [
                person_jpegs(args.batch_size, offset=offset + i * args.batch_size)
                for i in range(args.requests)
            ]
            load = load_average()
            raw_main = measure_forward_throughput(
                network, args.batch_size, args.iterations, compute
            )
            raw_worker = in_worker_thread(
                measure_forward_throughput, network, args.batch_size, args.iterations, compute
            )
            seconds = enroll_all(server.base_url, batches, args.clients, f"r{number}")
            http = args.requests * args.batch_size / seconds
            raw = max(raw_main, raw_worker)
            rounds.append(
                {
                    "raw_main_thread_images_per_s": round(raw_main, 2),
                    "raw_worker_thread_images_per_s": round(raw_worker, 2),
                    "http_enroll_images_per_s": round(http, 2),
                    "ratio": round(http / raw, 3),
                    "load_avg_at_start": round(load, 2),
                }
            )
    finally:
        server.stop()
    print(
        json.dumps(
            {
                "arch": args.arch,
                "model_version": bench.card.version,
                "batch_size": args.batch_size,
                "requests_per_round": args.requests,
                "clients": args.clients,
                "rounds": rounds,
                "median_ratio": statistics.median(r["ratio"] for r in rounds),
                "torch_threads": torch.get_num_threads(),
                "bf16": compute.bf16,
                "machine": platform.processor() or platform.machine(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
