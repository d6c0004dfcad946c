"""Training on the device: the trainer's own runs (loss, checkpoints, resume, DDP) and
its step's speed with and without ``torch.compile``.

The trainer runs as a user runs it (``python -m training.run --preset
market1501-resnet50``, then ``torchrun``) on a generated Market-1501-layout set, so
the data pipeline, checkpoint files and resume state are the real ones. The trainer has
no compile switch; the compile comparison compiles the trainer's objective (network
and losses) here, around ``training.engine.train_step``, on random in-memory batches.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from acceptance.common import CheckFailed, Sizes, run_python, synchronize
from model.checkpoint import load_checkpoint
from model.compute import ComputeSettings
from model.config import ModelConfig
from model.losses import LossWeights, ReIDCriterion
from model.network import build_model
from training.config import from_mapping
from training.data.synthetic import generate_synthetic_market
from training.engine import TrainingObjective, train_step
from training.optim import build_optimizer

DDP_LOSS_TOLERANCE = 0.05  # relative; bf16 reductions differ between the two paths
TRAIN_TIMEOUT_S = 240


def _trainer_args(
    device: torch.device, sizes: Sizes, data: Path, out: Path, epochs: int
) -> list[str]:
    return [
        "-m", "training.run", "--preset", "market1501-resnet50", "--arch", sizes.arch,
        "--data-dir", str(data), "--output-dir", str(out), "--device", device.type,
        "--epochs", str(epochs), "--batch-p", str(sizes.batch_p), "--batch-k", str(sizes.batch_k),
        "--warmup-epochs", "0", "--lr", str(sizes.lr), "--lr-milestones", "1000",
        "--eval-every", "1000",
        "--workers", str(sizes.workers), "--seed", "0", "--calibration-fraction", "0",
        "--no-plots", "--no-progress",
    ]  # fmt: skip


def _rows(out: Path) -> list[dict[str, Any]]:
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [row for row in map(json.loads, lines) if row.get("epoch", 0) > 0]


def prepare_data(sizes: Sizes, work: Path) -> Path:
    """The generated Market-1501-layout set both trainer runs read."""
    return generate_synthetic_market(
        work / "market",
        num_train_ids=sizes.train_ids,
        num_test_ids=sizes.test_ids,
        num_cameras=4,
        images_per_id_per_camera=sizes.images_per_id_per_camera,
    )


def trainer_run(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    """Train, stop one epoch short, resume to the end; the loss must fall, files reload."""
    data = prepare_data(sizes, work)
    out = work / "run"
    first = sizes.epochs - 1
    seconds = run_python(["python", *_trainer_args(device, sizes, data, out, first)],
                         work / "train.log", timeout_s=TRAIN_TIMEOUT_S)  # fmt: skip
    before = _rows(out)
    resume_seconds = run_python(
        ["python", *_trainer_args(device, sizes, data, out, sizes.epochs), "--resume"],
        work / "resume.log",
        timeout_s=TRAIN_TIMEOUT_S,
    )
    rows = _rows(out)
    if [row["epoch"] for row in rows] != list(range(1, sizes.epochs + 1)):
        raise CheckFailed(f"after resume the log holds epochs {[r['epoch'] for r in rows]}")
    if rows[:first] != before:
        raise CheckFailed("resuming rewrote the epochs trained before it")
    losses = [round(row["loss"], 4) for row in rows]
    # Epoch means of a few batches are noisy at toy sizes: some later epoch must beat the first.
    if not min(losses[1:]) < losses[0]:
        raise CheckFailed(f"the loss did not fall: {losses}")
    network, card = load_checkpoint(out / "last")
    embedding = network.eval().embed(torch.randn(2, 3, *card.config.input_size))
    if embedding.shape != (2, card.config.embedding_dim) or not torch.isfinite(embedding).all():
        raise CheckFailed(f"the reloaded checkpoint embeds to {tuple(embedding.shape)}")
    batch = sizes.batch_p * sizes.batch_k
    return {
        "preset": "market1501-resnet50",
        "arch": sizes.arch,
        "train_images": rows[0]["images"],
        "steps": sum(row["images"] for row in rows) // batch,
        "loss_per_epoch": losses,
        "images_per_s_per_epoch": [round(row["images_per_s"], 1) for row in rows],
        "first_run_s": round(seconds, 1),
        "resumed_run_s": round(resume_seconds, 1),
        "reloaded_embedding_dim": card.config.embedding_dim,
    }


def ddp_run(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    """``torchrun --nproc-per-node 1``: epoch 1 must match the single process's epoch 1."""
    reference = _rows(work / "run")[0]["loss"]
    data, out = work / "market", work / "ddp"
    seconds = run_python(
        ["python", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
         *_trainer_args(device, sizes, data, out, 1)],
        work / "ddp.log",
        timeout_s=TRAIN_TIMEOUT_S,
    )  # fmt: skip
    loss = _rows(out)[0]["loss"]
    difference = abs(loss - reference) / abs(reference)
    if difference > DDP_LOSS_TOLERANCE:
        raise CheckFailed(f"DDP epoch-1 loss {loss:.4f} vs single process {reference:.4f}")
    shutil.rmtree(out, ignore_errors=True)
    return {
        "processes": 1,
        "epoch1_loss": round(loss, 4),
        "single_process_epoch1_loss": round(reference, 4),
        "relative_difference": round(difference, 5),
        "tolerance": DDP_LOSS_TOLERANCE,
        "seconds": round(seconds, 1),
        "two_processes_one_gpu": "not run: NCCL needs one GPU per rank",
    }


def step_throughput(device: torch.device, sizes: Sizes, *, compiled: bool) -> dict[str, Any]:
    """images/s and peak memory of ``train_step`` (bf16, channels_last as the trainer picks)."""
    torch.manual_seed(0)
    compute = ComputeSettings.resolve(device, "auto", "auto")
    config = ModelConfig(arch=sizes.arch, last_stride=1, attention="both", num_classes=751)
    network = build_model(config)
    criterion = ReIDCriterion(751, config.embedding_dim, LossWeights())
    objective = compute.prepare(TrainingObjective(network, criterion)).train()
    # On the CPU (the test suite) the eager backend checks the wrapping in seconds;
    # on CUDA inductor compiles for real.
    runner = (
        torch.compile(objective, backend="inductor" if device.type == "cuda" else "eager")
        if compiled
        else objective
    )
    settings = from_mapping({"optimizer": "sgd", "lr": 0.01, "warmup_epochs": 0})
    optimizer = build_optimizer([network, criterion], settings)
    batch = sizes.batch_p * sizes.batch_k
    images = torch.randn(batch, 3, *network.config.input_size, device=device)
    pids = torch.arange(sizes.batch_p, device=device).repeat_interleave(sizes.batch_k)
    started = time.perf_counter()
    train_step(runner, images, pids, optimizer, compute)  # compiles if asked
    synchronize(device)
    first_step_s = time.perf_counter() - started
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for _ in range(sizes.throughput_steps):
        train_step(runner, images, pids, optimizer, compute)
    synchronize(device)
    seconds = time.perf_counter() - started
    report: dict[str, Any] = {
        "compile": ("inductor" if device.type == "cuda" else "eager") if compiled else "off",
        "bf16_autocast": compute.bf16,
        "channels_last": compute.channels_last,
        "batch": batch,
        "first_step_s": round(first_step_s, 2),
        "images_per_s": round(batch * sizes.throughput_steps / seconds, 1),
    }
    if device.type == "cuda":
        report["peak_allocated_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    return report


def throughput(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    eager = step_throughput(device, sizes, compiled=False)
    try:
        compiled = step_throughput(device, sizes, compiled=True)
    except Exception as error:  # a compiler failure is a finding, not the end of the run
        compiled = {"compile": "failed", "error": f"{type(error).__name__}: {error}"[:500]}
    if not eager["images_per_s"] > 0:
        raise CheckFailed("the training step measured no throughput")
    return {"compile_off": eager, "compile_on": compiled}
