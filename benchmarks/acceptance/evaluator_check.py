"""The shared evaluator on the device: the same metrics as on the CPU, and its speed.

Features come from ``benchmarks/evaluator.py``'s generator (identity centroids plus
noise), so positives rank high as in the datasets.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from evaluator import ProblemSize, make_problem

from acceptance.common import CheckFailed, Sizes, synchronize
from model.evaluation.metrics import compute_reid_metrics

COMPARED = ("mAP", "mINP", "rank1", "rank5", "rank10")
TOLERANCE = 1e-4  # metrics are fractions of queries; float32 distances on two devices


def _metrics(problem: dict[str, torch.Tensor], device: torch.device) -> tuple[Any, float]:
    moved = {key: value.to(device) for key, value in problem.items()}
    synchronize(device)
    started = time.perf_counter()
    metrics = compute_reid_metrics(**moved)
    synchronize(device)
    return metrics, time.perf_counter() - started


def evaluator_parity(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for name, queries, gallery, identities, cameras in sizes.eval_sizes:
        size = ProblemSize(queries, gallery, identities, cameras)
        problem = make_problem(size, dim=2048, seed=0)
        on_device, device_s = _metrics(problem, device)
        _metrics(problem, device)  # the first call on CUDA pays for kernel loading
        _, warm_s = _metrics(problem, device)
        on_cpu, cpu_s = _metrics(problem, torch.device("cpu"))
        gaps = {key: abs(getattr(on_device, key) - getattr(on_cpu, key)) for key in COMPARED}
        if max(gaps.values()) > TOLERANCE:
            raise CheckFailed(f"{name}: {device.type} and CPU metrics differ by {gaps}")
        report[name] = {
            "queries": queries,
            "gallery": gallery,
            "mAP": round(on_device.mAP, 5),
            "rank1": round(on_device.rank1, 5),
            "max_gap_to_cpu": max(gaps.values()),
            f"{device.type}_first_s": round(device_s, 3),
            f"{device.type}_s": round(warm_s, 3),
            "cpu_s": round(cpu_s, 3),
        }
    return report
