"""Time and peak memory of k-reciprocal re-ranking on a Market-1501- or MSMT17-sized problem.

    .venv/bin/python benchmarks/reranking.py                              # Market-1501 size
    .venv/bin/python benchmarks/reranking.py --size msmt17 --fraction 0.25
    .venv/bin/python benchmarks/reranking.py --fraction 0.1 --with-dense  # + dense reference

The problem is benchmarks/evaluator.py's (identity centroids plus noise, L2-normalised
float32, ``--dim`` wide; 2048 is ResNet-50's embedding width). ``--fraction`` scales the
query and gallery counts (and identities) down, for sizes that would not finish here.
The evaluation with re-ranking (compute_reid_metrics(rerank=...)) is timed once; the peak
resident memory it adds on top of the features is the kernel's high-water mark, reset
just before. ``--with-dense`` also runs the dense test reference (tests/model/
test_reranking.py: full N x N float64 matrices, Python loops) in a child process and
reports the peak RSS it adds on top of its features, for sizes where it fits. For the
original authors' float32 code the arithmetic is also reported: at its argsort it holds the
N x N float32 distance and V matrices, the int64 argsort and its int32 copy, i.e. 20 N^2
bytes (N = queries + gallery).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from evaluator import (
    SIZES,
    ProblemSize,
    current_rss_bytes,
    make_problem,
    peak_rss_bytes,
    reset_peak_rss,
)

from model.evaluation.metrics import DEFAULT_MEMORY_BUDGET_BYTES, compute_reid_metrics
from model.evaluation.reranking import KReciprocalSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
DENSE_REFERENCE = REPO_ROOT / "tests" / "model" / "test_reranking.py"


def scaled(size: ProblemSize, fraction: float) -> ProblemSize:
    return ProblemSize(
        max(2, round(size.num_query * fraction)),
        max(2, round(size.num_gallery * fraction)),
        max(2, round(size.num_ids * fraction)),
        size.num_cameras,
    )


def run_dense(problem: dict[str, torch.Tensor], settings: KReciprocalSettings) -> dict:
    """The dense reference on this problem, in this (child) process."""
    spec = importlib.util.spec_from_file_location("dense_reference", DENSE_REFERENCE)
    assert spec is not None and spec.loader is not None
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    features = torch.cat([problem["query_features"], problem["gallery_features"]]).numpy()
    baseline_rss = current_rss_bytes()
    reset_peak_rss()
    started = time.perf_counter()
    distances = reference.dense_re_ranking(
        reference.dense_distances(features, "cosine"),
        len(problem["query_features"]),
        settings.k1,
        settings.k2,
        settings.lambda_value,
    )
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "added_peak_rss_mib": round((peak_rss_bytes() - baseline_rss) / 2**20),
        "checksum": float(np.sum(distances)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="market1501")
    parser.add_argument("--fraction", type=float, default=1.0, help="of the queries and gallery")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--budget-mib", type=int, default=DEFAULT_MEMORY_BUDGET_BYTES // 2**20, metavar="MIB"
    )
    parser.add_argument("--with-dense", action="store_true", help="also run the dense reference")
    parser.add_argument("--dense-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 < args.fraction <= 1:
        parser.error(f"--fraction must be in (0, 1], got {args.fraction}")
    if args.threads:
        torch.set_num_threads(args.threads)
    size = scaled(SIZES[args.size], args.fraction)
    problem = make_problem(size, args.dim, args.seed)
    settings = KReciprocalSettings()
    if args.dense_only:
        print(json.dumps(run_dense(problem, settings)))
        return

    plain = compute_reid_metrics(**problem)
    baseline_rss = current_rss_bytes()
    peak_reset = reset_peak_rss()
    started, cpu_started = time.perf_counter(), time.process_time()
    reranked = compute_reid_metrics(
        **problem, rerank=settings, memory_budget_bytes=args.budget_mib * 2**20
    )
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak = peak_rss_bytes()
    items = size.num_query + size.num_gallery
    report = {
        "size": args.size,
        "fraction": args.fraction,
        "num_query": size.num_query,
        "num_gallery": size.num_gallery,
        "dim": args.dim,
        "metric": "cosine",
        "rerank": settings.to_dict(),
        "budget_mib": args.budget_mib,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "rerank_s": round(seconds, 1),
        "rerank_cpu_s": round(cpu_seconds, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "features_rss_mib": round(baseline_rss / 2**20),
        "peak_rss_mib": round(peak / 2**20),
        "added_peak_rss_mib": round((peak - baseline_rss) / 2**20),
        "peak_rss_includes_data_generation": not peak_reset,
        "mAP": {"plain": round(plain.mAP, 4), "reranked": round(reranked.mAP, 4)},
        "rank1": {"plain": round(plain.rank1, 4), "reranked": round(reranked.rank1, 4)},
        "dense_float32_reference_code_gib": round(20 * items**2 / 2**30, 1),
    }
    if args.with_dense:
        child = subprocess.run(
            [sys.executable, __file__, "--dense-only", "--size", args.size, "--fraction",
             str(args.fraction), "--dim", str(args.dim), "--seed", str(args.seed)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        dense = json.loads(child.stdout)
        report["dense_reference_s"] = dense["seconds"]
        report["dense_reference_added_peak_rss_mib"] = dense["added_peak_rss_mib"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
