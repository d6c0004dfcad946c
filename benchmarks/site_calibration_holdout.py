"""Does a site calibration keep its FPIR for people it never saw? Real HTTP, live gallery.

    .venv/bin/python benchmarks/site_calibration_holdout.py --checkpoint CK --data-dir DATA \\
        [--enrolled 200 --strangers 300 --seed 0]

DATA is a Market-layout set whose test identities the checkpoint never saw (the
synthetic generator's, or Market-1501's). A service runs on the checkpoint (SQLite, a
temporary data folder), and a seeded draw of DATA's test identities is split three ways:

* ``--enrolled`` identities: their gallery crops are enrolled over HTTP, with cameras;
* ``--strangers`` others: their query crops, with the enrolled identities' query crops,
  go to ``POST /calibrate`` (an enrolled identity's crop is non-mated against every other
  enrolled identity, so people of this site give non-mated probes too, against the whole
  live gallery);
* every remaining identity (or ``--held-out`` of them): people neither the gallery nor
  the calibration has seen.
  Each of their query crops is one ``POST /query``; its decision (at the service's
  default ``max_false_positive_rate``) and best score are kept, and the thresholds
  ``GET /calibration`` states for this gallery at FPIR 10%, 1% and 0.1% are applied to
  the same scores.

The job's own ``operating_points`` are measured on the probes it was fitted on; this is
the out-of-sample check. Prints JSON: per target, the threshold, the observed FPIR over
the held-out probes and its ratio to the target, and how often the service's own
decision agreed with the stated 1% threshold.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np
from service_common import LiveServer

from model.evaluation.layouts.market import read_market_split
from model.evaluation.layouts.records import ImageRecord

JOB_TIMEOUT_S = 3600


def people(records: list[ImageRecord]) -> dict[int, list[ImageRecord]]:
    grouped: dict[int, list[ImageRecord]] = defaultdict(list)
    for record in records:
        if record.pid > 0:
            grouped[record.pid].append(record)
    return grouped


def files(records: list[ImageRecord], field: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (r.path.name, r.path.read_bytes(), "image/jpeg")) for r in records]


def enroll(client: httpx.Client, gallery: dict[int, list[ImageRecord]], pids: list[int]) -> None:
    for pid in pids:
        by_camera: dict[int, list[ImageRecord]] = defaultdict(list)
        for record in gallery[pid]:
            by_camera[record.camid].append(record)
        for camid, records in by_camera.items():
            response = client.post(
                "/gallery",
                data={"identity": f"p{pid}", "camera": f"cam-{camid}"},
                files=files(records, "images"),
            )
            if response.status_code != 201:
                raise SystemExit(f"enrolling p{pid} failed: {response.text}")


def calibrate(client: httpx.Client, records: list[ImageRecord]) -> dict:
    accepted = client.post(
        "/calibrate",
        data={"identities": json.dumps([f"p{r.pid}" for r in records])},
        files=files(records, "images"),
    )
    if accepted.status_code != 202:
        raise SystemExit(f"starting the calibration failed: {accepted.text}")
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = client.get(accepted.json()["status_url"]).json()
        if job["status"] == "succeeded":
            return job["result"]
        if job["status"] == "failed":
            raise SystemExit(f"the calibration failed: {job['error']}")
        time.sleep(1.0)
    raise SystemExit("the calibration did not finish in time")


def measure(args: argparse.Namespace, base_url: str) -> dict[str, object]:
    query, gallery = (
        people(read_market_split(args.data_dir / split)) for split in ("query", "bounding_box_test")
    )
    pids = sorted(set(query) & set(gallery))
    order = np.random.default_rng(args.seed).permutation(pids).tolist()
    enrolled = order[: args.enrolled]
    strangers = order[args.enrolled : args.enrolled + args.strangers]
    held_out = order[args.enrolled + args.strangers :][: args.held_out]
    if not held_out:
        raise SystemExit("no identities left to hold out: lower --enrolled or --strangers")
    with httpx.Client(base_url=base_url, timeout=600) as client:
        enroll(client, gallery, enrolled)
        job = calibrate(client, [r for pid in enrolled + strangers for r in query[pid]])
        stated = client.get("/calibration").json()
        thresholds = {
            point["false_positive_rate"]: point["threshold"] for point in stated["thresholds"]
        }
        scores, decided = [], []
        for pid in held_out:
            for record in query[pid]:
                answer = client.post("/query", files=files([record], "image")).json()
                scores.append(answer["decision"]["score"])
                decided.append(answer["decision"]["status"] == "match")
    best = np.asarray(scores, dtype=np.float64)
    service_threshold = thresholds.get(0.01)
    agreement = (
        float(np.mean((best >= service_threshold) == np.asarray(decided)))
        if service_threshold is not None
        else None
    )
    return {
        "enrolled_identities": len(enrolled),
        "calibration_strangers": len(strangers),
        "held_out_identities": len(held_out),
        "held_out_probes": len(best),
        "calibration": {"source": stated["source"], **job["calibration"]},
        "targets": [
            {
                "target_fpir": rate,
                "threshold": round(threshold, 4),
                "observed_fpir": round(float(np.mean(best >= threshold)), 5),
                "observed_over_target": round(float(np.mean(best >= threshold)) / rate, 2),
            }
            for rate, threshold in sorted(thresholds.items(), reverse=True)
        ],
        "service_decisions_agree_with_1pct_threshold": agreement,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True, help="Market layout")
    parser.add_argument("--enrolled", type=int, default=200)
    parser.add_argument("--strangers", type=int, default=300)
    parser.add_argument("--held-out", type=int, default=None, help="default: every one left")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        settings = {
            "REID_MODEL_PATH": str(args.checkpoint),
            "REID_DATA_DIR": str(Path(scratch) / "service"),
            "REID_DEVICE": "cpu",
            "REID_LOG_LEVEL": "warning",
        }
        server = LiveServer(settings, Path(scratch) / "server.log")
        try:
            server.wait_ready()
            print(json.dumps(measure(args, server.base_url), indent=2))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
