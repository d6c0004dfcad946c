"""What every acceptance check shares: its sizes, a failure type, and subprocess plumbing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


class CheckFailed(RuntimeError):
    """A check ran and the system did not do what it must (not: could not run)."""


class Skipped(Exception):
    """A check cannot run here (missing package, one GPU); the reason goes in the report."""


@dataclass(frozen=True)
class Sizes:
    """How big each check runs: the H200 acceptance (full) or the test suite's (quick)."""

    arch: str
    train_ids: int
    test_ids: int
    images_per_id_per_camera: int
    epochs: int
    lr: float  # no warm-up, so the first epoch's loss is the one to beat
    batch_p: int
    batch_k: int
    workers: int
    throughput_steps: int
    eval_sizes: tuple[tuple[str, int, int, int, int], ...]  # name, queries, gallery, ids, cameras
    enroll_batches: tuple[int, ...]
    enroll_requests: int
    queries: int
    decode_images: int


FULL = Sizes(
    arch="resnet50",
    train_ids=160,
    test_ids=20,
    images_per_id_per_camera=4,
    epochs=8,
    lr=0.04,  # the preset's
    batch_p=16,
    batch_k=4,
    workers=8,
    throughput_steps=20,
    eval_sizes=(("market1501", 3_368, 15_913, 751, 6), ("msmt17", 11_659, 82_161, 3_060, 15)),
    enroll_batches=(32, 64, 128, 256),
    enroll_requests=2,
    queries=200,
    decode_images=256,
)
QUICK = Sizes(
    arch="resnet18",
    train_ids=6,
    test_ids=4,
    images_per_id_per_camera=1,
    epochs=3,
    lr=0.01,
    batch_p=3,
    batch_k=2,
    workers=0,
    throughput_steps=1,
    eval_sizes=(("tiny", 40, 200, 20, 6),),
    enroll_batches=(2,),
    enroll_requests=1,
    queries=5,
    decode_images=4,
)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_python(args: list[str], log: Path, *, timeout_s: float) -> float:
    """Run ``python ARGS`` (this interpreter) from the repository; raise with the log's tail."""
    command = [sys.executable, *args[1:]]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    started = time.perf_counter()
    with log.open("w") as output:
        result = subprocess.run(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, timeout=timeout_s,
            check=False,
        )  # fmt: skip
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise CheckFailed(f"{' '.join(args[1:5])} ... exited {result.returncode}: {tail}")
    return time.perf_counter() - started
