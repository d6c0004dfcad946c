"""GPU acceptance: train, DDP, evaluate, serve and export on one GPU, in one command.

    PYTHONPATH=. python benchmarks/gpu_acceptance.py --output acceptance.json
    .venv/bin/python benchmarks/gpu_acceptance.py --device cpu --quick --output a.json

Runs the checks in order and stops at the first that fails; a check that cannot run
here (no FAISS, no onnxruntime) is reported as skipped with its reason and the run goes
on. Every check is timed. The JSON summary is rewritten after each check, so a run cut
short still leaves what it measured. Exit status 0 when nothing failed.

1. ``train``: the trainer (``--preset market1501-resnet50``) on a generated
   Market-1501-layout set, stopped one epoch short and resumed; the loss must fall and
   the checkpoint reload.
2. ``train_step_speed``: images/s and peak memory of the training step, compile off and on.
3. ``ddp``: ``torchrun --nproc-per-node 1``; epoch 1 loss as the single process's.
4. ``evaluator``: the same metrics on the device as on the CPU, at Market-1501 and
   MSMT17 sizes, with timings.
5. ``service``: enrollment over HTTP vs the raw forward, GPU JPEG decode vs Pillow,
   /query p50 and p99.
6. ``onnx``: export from the device's network, parity with PyTorch on the CPU.

Sized for about 4 minutes on one H200 (``--quick``: toy sizes on the CPU, for the test
suite: the same code paths in seconds).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from acceptance.common import FULL, QUICK, REPO, CheckFailed, Sizes, Skipped
from acceptance.evaluator_check import evaluator_parity
from acceptance.export_check import onnx_parity
from acceptance.service_check import service
from acceptance.training_checks import ddp_run, throughput, trainer_run

import model  # noqa: F401  (makes torchvision importable on CPU-only torch)

Check = Callable[[torch.device, Sizes, Path], dict[str, Any]]
CHECKS: tuple[tuple[str, Check], ...] = (
    ("train", trainer_run),
    ("train_step_speed", throughput),
    ("ddp", ddp_run),
    ("evaluator", evaluator_parity),
    ("service", service),
    ("onnx", onnx_parity),
)


def _commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def _machine(device: torch.device) -> dict[str, Any]:
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
    }


def run(device: torch.device, sizes: Sizes, work: Path, output: Path, argv: list[str]) -> bool:
    """Every check in order until one fails; True when none failed."""
    summary: dict[str, Any] = {
        "command": " ".join(["benchmarks/gpu_acceptance.py", *argv]),
        "commit": _commit(),
        "machine": _machine(device),
        "checks": {},
        "passed": False,
    }
    started = time.perf_counter()
    failed = False
    for name, check in CHECKS:
        check_started = time.perf_counter()
        try:
            entry = {"status": "passed", **check(device, sizes, work)}
        except Skipped as reason:
            entry = {"status": "skipped", "reason": str(reason)}
        except (CheckFailed, subprocess.TimeoutExpired) as error:
            entry, failed = {"status": "failed", "reason": str(error)}, True
        except Exception as error:  # a crash is a failure to report, not a lost summary
            entry, failed = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}, True
        entry["seconds"] = round(time.perf_counter() - check_started, 1)
        summary["checks"][name] = entry
        summary["seconds"] = round(time.perf_counter() - started, 1)
        print(f"{name}: {entry['status']} in {entry['seconds']} s", file=sys.stderr, flush=True)
        summary["passed"] = not failed and len(summary["checks"]) == len(CHECKS)
        output.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if failed:
            break
    return not failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="toy sizes (the test suite's)")
    parser.add_argument("--output", type=Path, required=True, help="JSON summary to write")
    parser.add_argument("--work-dir", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    device = torch.device(args.device)
    sizes = QUICK if args.quick else FULL
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reid-acceptance-") as scratch:
        work = args.work_dir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        return 0 if run(device, sizes, work, args.output, sys.argv[1:]) else 1


if __name__ == "__main__":
    sys.exit(main())
