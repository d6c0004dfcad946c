"""Raw forward throughput of ``ReIDNet.embed`` (images/s), the ceiling for enrollment.

    .venv/bin/python benchmarks/model_forward.py --arch resnet50 --batch-size 32
    .venv/bin/python benchmarks/model_forward.py --arch resnet18 --batch-size 32
    .venv/bin/python benchmarks/model_forward.py --device cuda --batch-size 128

Input is a preprocessed random batch (N, 3, H, W) at the network's input size, so
decoding and resizing are excluded: the service's HTTP enrollment rate divided by this number is the
share of time it spends outside the network. ``--amp auto`` (the default) runs
channels_last with bf16 autocast where bf16 is native (CUDA, AVX512-BF16/AMX CPUs),
as the service does (`model.compute`). Weights are an untrained deterministic init;
throughput does not depend on their values.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from model.checkpoint import untrained_model
from model.compute import SWITCHES, ComputeSettings
from model.config import ARCHS, ATTENTION_MODES, ModelConfig
from model.network import ReIDNet


def measure_forward_throughput(
    network: ReIDNet,
    batch_size: int,
    iterations: int,
    compute: ComputeSettings,
    *,
    warmup: int = 2,
) -> float:
    """Images per second of ``network.embed`` run as ``compute`` says, after ``warmup``
    untimed batches. Moves ``network`` to the device and puts it in eval mode."""
    if batch_size < 1 or iterations < 1 or warmup < 0:
        raise ValueError("batch_size and iterations must be >= 1 and warmup >= 0")
    compute.prepare(network).eval()
    images = compute.to_device(torch.randn(batch_size, 3, *network.config.input_size))

    def synchronise() -> None:
        if compute.device.type == "cuda":
            torch.cuda.synchronize(compute.device)

    with torch.inference_mode(), compute.autocast():
        for _ in range(warmup):
            network.embed(images)
        synchronise()
        start = time.perf_counter()
        for _ in range(iterations):
            network.embed(images)
        synchronise()
        elapsed = time.perf_counter() - start
    return batch_size * iterations / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=ARCHS, default="resnet50")
    parser.add_argument("--attention", choices=ATTENTION_MODES, default="both")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=SWITCHES, default="auto", help="bf16 + channels_last")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")

    network, _ = untrained_model(ModelConfig(arch=args.arch, attention=args.attention))
    compute = ComputeSettings.resolve(args.device, args.amp, args.amp)
    rate = measure_forward_throughput(
        network, args.batch_size, args.iterations, compute, warmup=args.warmup
    )
    result = {
        "arch": args.arch,
        "attention": args.attention,
        "batch_size": args.batch_size,
        "iterations": args.iterations,
        "device": args.device,
        "bf16": compute.bf16,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "images_per_second": round(rate, 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
