"""Time compute_reid_metrics on a Market-1501- or MSMT17-sized random problem.

    .venv/bin/python benchmarks/evaluator.py                 # Market-1501 size
    .venv/bin/python benchmarks/evaluator.py --size msmt17 --repeats 1

Features are identity centroids plus noise (so positives really rank high and the
per-query positive counts match the datasets'), L2-normalised, float32. Reports the
median of several timed runs after a warm-up, and the peak resident memory *added* by
the evaluation on top of the features themselves (the kernel's high-water mark is
reset just before the timed runs, so the data generation does not hide it). The CPU
time and the 1-minute load average are reported too: on a shared machine, wall time
alone says more about the neighbours than about the code.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from model.evaluation.metrics import compute_reid_metrics, default_chunk_size


@dataclass(frozen=True)
class ProblemSize:
    num_query: int
    num_gallery: int
    num_ids: int
    num_cameras: int


SIZES = {
    # Market-1501 test split: 3,368 queries, 15,913 gallery crops (junk dropped), 751 ids.
    "market1501": ProblemSize(3_368, 15_913, 751, 6),
    # MSMT17 test split: 11,659 queries, 82,161 gallery crops, 3,060 ids, 15 cameras.
    "msmt17": ProblemSize(11_659, 82_161, 3_060, 15),
}


def make_problem(size: ProblemSize, dim: int, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    centroids = torch.randn(size.num_ids, dim, generator=generator)

    def split(count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pids = torch.randint(0, size.num_ids, (count,), generator=generator)
        camids = torch.randint(0, size.num_cameras, (count,), generator=generator)
        features = torch.randn(count, dim, generator=generator).mul_(3.0)
        features.add_(centroids[pids])
        return torch.nn.functional.normalize(features, dim=1), pids, camids

    qf, q_pids, q_cams = split(size.num_query)
    gf, g_pids, g_cams = split(size.num_gallery)
    return {
        "query_features": qf,
        "gallery_features": gf,
        "query_pids": q_pids,
        "gallery_pids": g_pids,
        "query_camids": q_cams,
        "gallery_camids": g_cams,
    }


def largest_identity(problem: dict[str, torch.Tensor]) -> int:
    return int(torch.bincount(problem["gallery_pids"].cpu()).max())


def peak_rss_bytes() -> int:
    """The process's resident high-water mark (VmHWM), via /proc where available."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not permitted."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def time_distance_argsort(problem: dict[str, torch.Tensor], chunk_size: int) -> tuple[float, float]:
    """Wall and CPU seconds for cosine distances plus a stable argsort of every row.

    A lower bound on an argsort-based evaluator: it would still have to gather labels
    and accumulate AP/CMC over the sorted rows afterwards.
    """
    query = torch.nn.functional.normalize(problem["query_features"], dim=1)
    gallery = torch.nn.functional.normalize(problem["gallery_features"], dim=1)
    start, cpu_start = time.perf_counter(), time.process_time()
    for begin in range(0, len(query), chunk_size):
        distances = torch.mm(query[begin : begin + chunk_size], gallery.t()).neg_().add_(1.0)
        torch.sort(distances, dim=1, stable=True)
    if query.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="market1501")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-size", type=int, default=None, help="default: memory budget")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--compare-argsort",
        action="store_true",
        help="also time the textbook approach's unavoidable core: distances + stable row argsort",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    size = SIZES[args.size]
    problem = make_problem(size, args.dim, args.seed)
    problem = {name: tensor.to(args.device) for name, tensor in problem.items()}

    def evaluate() -> dict:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        result = compute_reid_metrics(**problem, metric=args.metric, chunk_size=args.chunk_size)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return {
            "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu_start,
            "metrics": result,
        }

    baseline_rss = current_rss_bytes()
    peak_reset = reset_peak_rss()
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    warmup = evaluate()
    runs = [evaluate() for _ in range(args.repeats)]
    metrics = runs[-1]["metrics"] if runs else warmup["metrics"]
    timed = runs or [warmup]
    seconds = [run["seconds"] for run in timed]
    report = {
        "size": args.size,
        "num_query": size.num_query,
        "num_gallery": size.num_gallery,
        "dim": args.dim,
        "metric": args.metric,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "chunk_size": args.chunk_size
        or default_chunk_size(size.num_gallery, largest_identity(problem)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "warmup_s": round(warmup["seconds"], 3),
        "median_s": round(statistics.median(seconds), 3),
        "runs_s": [round(s, 3) for s in seconds],
        # CPU seconds of this process: less sensitive than wall time to other load.
        "median_cpu_s": round(statistics.median(run["cpu_seconds"] for run in timed), 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "features_rss_mib": round(baseline_rss / 2**20),
        "peak_rss_mib": round(peak_rss_bytes() / 2**20),
        "peak_rss_includes_data_generation": not peak_reset,
        "mAP": round(metrics.mAP, 4),
        "rank1": round(metrics.rank1, 4),
        "mINP": round(metrics.mINP, 4),
    }
    if args.compare_argsort:
        chunk = args.chunk_size or default_chunk_size(size.num_gallery, largest_identity(problem))
        argsort_runs = [time_distance_argsort(problem, chunk) for _ in range(max(1, args.repeats))]
        report["distance_plus_argsort_median_s"] = round(
            statistics.median(wall for wall, _ in argsort_runs), 3
        )
        report["distance_plus_argsort_median_cpu_s"] = round(
            statistics.median(cpu for _, cpu in argsort_runs), 3
        )
    if args.device.startswith("cuda"):
        report["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
