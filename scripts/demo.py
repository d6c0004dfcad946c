"""`make demo`: a trained model, a gallery of people it never saw, and the console on them.

A newcomer has no dataset and no weights. This trains the ``cpu-synthetic`` preset
(minutes on 2 CPU cores; skipped when ``runs/demo/best`` exists), starts the
service on that checkpoint with its own data folder, enrolls the held-out
identities of the generated set (their gallery crops, with their cameras) over
HTTP, fits a site calibration (``POST /calibrate``) on crops of strangers, and
keeps serving until Ctrl-C. The query crops of the enrolled people stay out of
the gallery and out of the calibration: they are what to search with on the
console's Search page, which then answers match or unknown.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx

from model.evaluation.layouts.market import read_market_split
from training.data.synthetic import generate_synthetic_market

START_TIMEOUT_S = 300
JOB_TIMEOUT_S = 600
STRANGERS = 30  # people drawn with another seed: nobody the gallery or the model has seen


def train(run: Path) -> Path:
    best = run / "best"
    if (best / "model_card.json").exists():
        print(f"using the trained demo model in {best}")
        return best
    print("training the cpu-synthetic preset (a few minutes on 2 CPU cores)...", flush=True)
    subprocess.run(
        [
            *(sys.executable, "-m", "training.run", "--preset", "cpu-synthetic", "--synthetic"),
            *("--output-dir", str(run), "--no-progress"),
        ],
        check=True,
    )
    return best


def wait_until_up(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the service exited during start-up (code {server.returncode})")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the service did not answer {base}/health within {START_TIMEOUT_S} s")


def enroll_held_out(base: str, gallery: Path) -> int:
    """Each held-out identity's gallery crops, one request per camera (distractors skipped)."""
    groups: dict[tuple[int, int], list[Path]] = defaultdict(list)
    for record in read_market_split(gallery):
        if record.pid > 0:
            groups[(record.pid, record.camid)].append(record.path)
    with httpx.Client(base_url=base, timeout=120) as client:
        for (pid, camid), paths in sorted(groups.items()):
            response = client.post(
                "/gallery",
                data={"identity": f"person-{pid:04d}", "camera": f"cam-{camid}"},
                files=[("images", (path.name, path.read_bytes(), "image/jpeg")) for path in paths],
            )
            if response.status_code != 201:
                raise SystemExit(f"enrolling person-{pid:04d} failed: {response.text}")
    return len({pid for pid, _ in groups})


def calibrate_on_strangers(base: str, run: Path) -> dict:
    """A site calibration whose non-mated probes are people the gallery never had."""
    strangers = run / "strangers"
    if not strangers.exists():
        generate_synthetic_market(strangers, num_train_ids=2, num_test_ids=STRANGERS, seed=1)
    records = [r for r in read_market_split(strangers / "bounding_box_test") if r.pid > 0]
    with httpx.Client(base_url=base, timeout=120) as client:
        accepted = client.post(
            "/calibrate",
            data={"identities": json.dumps([f"stranger-{r.pid:04d}" for r in records])},
            files=[("images", (r.path.name, r.path.read_bytes(), "image/jpeg")) for r in records],
        )
        if accepted.status_code != 202:
            raise SystemExit(f"starting the site calibration failed: {accepted.text}")
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while time.monotonic() < deadline:
            job = client.get(accepted.json()["status_url"]).json()
            if job["status"] == "succeeded":
                return job["result"]
            if job["status"] == "failed":
                raise SystemExit(f"the site calibration failed: {job['error']}")
            time.sleep(0.5)
    raise SystemExit(f"the site calibration did not finish within {JOB_TIMEOUT_S} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs/demo"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    best = train(args.run_dir)
    data = args.run_dir / "synthetic-data"
    env = {
        **os.environ,
        "REID_MODEL_PATH": str(best),
        "REID_DATA_DIR": str(args.run_dir / "service"),
        "REID_HOST": args.host,
        "REID_PORT": str(args.port),
    }
    base = f"http://{args.host}:{args.port}"
    with subprocess.Popen([sys.executable, "-m", "app"], env=env) as server:
        try:
            wait_until_up(base, server)
            people = enroll_held_out(base, data / "bounding_box_test")
            calibrate_on_strangers(base, args.run_dir)
            print(
                f"\nenrolled {people} people the model never saw, calibrated on {STRANGERS} "
                f"strangers. Open {base}/ui and search "
                f"with a crop from {data / 'query'} (same people, other shots). Ctrl-C stops.\n",
                flush=True,
            )
            server.wait()
        except KeyboardInterrupt:
            server.terminate()
            server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
