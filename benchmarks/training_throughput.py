"""Training throughput: images/s of the trainer's step (forward, all losses, backward, step).

    .venv/bin/python benchmarks/training_throughput.py --arch resnet50 --batch-p 16 --batch-k 4
    .venv/bin/python benchmarks/training_throughput.py --arch resnet18 --device cuda

It times `training.engine.train_step`, the trainer's own per-batch step (the
`TrainingObjective` of network + `ReIDCriterion` and the SGD step; the lr is set per batch
outside it), on the
device settings the trainer would pick: bf16 autocast and channels_last on CUDA and on
CPUs with native bf16, plain fp32 elsewhere (``--amp``/``--channels-last`` override, as
in the trainer). Inputs are random tensors already in memory, so this is the compute
ceiling; data decoding/augmentation runs in DataLoader workers in real training
and is not included. Reports the median over timed iterations after warm-up
(wall and process CPU seconds), plus peak memory: process RSS high-water mark on
CPU, and ``torch.cuda.max_memory_allocated`` on CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time

import torch

import model  # noqa: F401  (makes torchvision importable on CPU-only torch)
from model.compute import SWITCHES, ComputeSettings
from model.config import ARCHS, ATTENTION_MODES, LAST_STRIDES, ModelConfig
from model.losses import LossWeights, ReIDCriterion
from model.network import build_model
from model.preprocessing import DEFAULT_INPUT_SIZE
from training.config import from_mapping
from training.engine import TrainingObjective, train_step
from training.optim import build_optimizer


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args: argparse.Namespace) -> dict[str, object]:
    torch.manual_seed(0)
    device = torch.device(args.device)
    on_cuda = device.type == "cuda"
    compute = ComputeSettings.resolve(device, args.amp, args.channels_last)
    batch = args.batch_p * args.batch_k
    num_classes = 751
    model_config = ModelConfig(
        arch=args.arch,
        last_stride=args.last_stride,
        attention=args.attention,
        num_classes=num_classes,
        input_height=args.input_height,
        input_width=args.input_width,
    )
    network = build_model(model_config)
    criterion = ReIDCriterion(num_classes, model_config.embedding_dim, LossWeights())
    objective = compute.prepare(TrainingObjective(network, criterion))
    config = from_mapping({"optimizer": "sgd", "lr": 0.01, "warmup_epochs": 0})
    optimizer = build_optimizer([network, criterion], config)
    images = torch.randn(batch, 3, *model_config.input_size, device=device)
    pids = torch.arange(args.batch_p, device=device).repeat_interleave(args.batch_k)
    objective.train()

    def step() -> None:
        train_step(objective, images, pids, optimizer, compute)

    for _ in range(args.warmup):
        step()
    _synchronize(device)
    if on_cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times, cpu_times = [], []
    for _ in range(args.iterations):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    median = statistics.median(times)
    result: dict[str, object] = {
        "arch": args.arch,
        "input_size": list(model_config.input_size),
        "attention": args.attention,
        "last_stride": args.last_stride,
        "batch": f"{args.batch_p}x{args.batch_k}={batch}",
        "device": torch.cuda.get_device_name(device) if on_cuda else "cpu",
        "threads": torch.get_num_threads(),
        "bf16_autocast": compute.bf16,
        "channels_last": compute.channels_last,
        "iterations": args.iterations,
        "median_step_s": round(median, 4),
        # CPU seconds of this process (all threads): steadier than wall time when the
        # machine is shared; on an idle machine wall ~= cpu / threads.
        "median_step_cpu_s": round(statistics.median(cpu_times), 4),
        "images_per_s": round(batch / median, 2),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        # Other processes competing for the cores make CPU numbers noisy; record how busy.
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }
    if on_cuda:
        result["cuda_max_allocated_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=ARCHS, default="resnet50")
    parser.add_argument("--attention", choices=ATTENTION_MODES, default="both")
    parser.add_argument("--last-stride", type=int, choices=LAST_STRIDES, default=1)
    parser.add_argument("--input-height", type=int, default=DEFAULT_INPUT_SIZE.height)
    parser.add_argument("--input-width", type=int, default=DEFAULT_INPUT_SIZE.width)
    parser.add_argument("--batch-p", type=int, default=16)
    parser.add_argument("--batch-k", type=int, default=4)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--amp", choices=SWITCHES, default="auto", help="bf16 autocast")
    parser.add_argument("--channels-last", choices=SWITCHES, default="auto")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    if args.batch_p < 2 or args.batch_k < 1 or args.iterations < 1 or args.warmup < 0:
        parser.error("need --batch-p >= 2, --batch-k >= 1, --iterations >= 1, --warmup >= 0")
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
