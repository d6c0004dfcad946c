"""Everything a run builds before its first epoch, and the checks that come first.

Data, network, criterion, optimiser and schedule are built here, and ``--resume``
state is checked against the config and restored, so that a problem the user
must fix surfaces as `UsageError` (or a layout/checkpoint error) before any
training time is spent and before anything but the run directory is written.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import model  # noqa: F401  (makes torchvision importable on CPU-only torch)
from model.compute import ComputeSettings
from model.losses import LossWeights, ReIDCriterion
from model.network import ReIDNet, build_model
from training import distributed
from training.checkpointing import (
    Progress,
    has_resume_state,
    load_resume_state,
    read_resume_config,
)
from training.config import ConfigError, TrainConfig, from_mapping, resume_locked_fields
from training.engine import TrainingObjective
from training.loaders import DataPipeline, build_data_pipeline
from training.optim import EpochSchedule, build_optimizer
from training.run_log import RunLog
from training.usage import UsageError


@dataclass
class RunState:
    """Everything built for a run, before the first epoch."""

    config: TrainConfig
    context: distributed.DistributedContext
    compute: ComputeSettings
    data: DataPipeline
    network: ReIDNet
    criterion: ReIDCriterion
    objective: nn.Module  # TrainingObjective, possibly wrapped in DDP
    optimizer: torch.optim.Optimizer
    schedule: EpochSchedule
    progress: Progress
    log: RunLog | None  # None on ranks other than 0
    started_at: float  # time.perf_counter() when preparing began: data loading counts too


def seed_everything(seed: int) -> None:
    """Seed every generator the run draws from, so a seed reproduces a run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def wants_cuda(config: TrainConfig) -> bool:
    """Whether this run trains on CUDA ("auto" takes it when there is one)."""
    return config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())


def resolve_compute(
    config: TrainConfig, context: distributed.DistributedContext
) -> ComputeSettings:
    """Device and step options (see `ComputeSettings.resolve` for what "auto" picks)."""
    on_cuda = wants_cuda(config)
    device = torch.device("cuda", context.local_rank) if on_cuda else torch.device("cpu")
    if on_cuda:
        # TF32 matmuls for whatever autocast leaves in fp32 (e.g. the loss heads).
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return ComputeSettings.resolve(device, config.amp, config.channels_last)


def prepare(config: TrainConfig) -> RunState:
    """Build data, network, criterion, optimiser; restore ``--resume`` state.

    Raises `UsageError` (or a layout/checkpoint error) for anything the user
    must fix, before any output is written beyond the run directory itself.
    """
    assert config.output_dir is not None
    started_at = time.perf_counter()
    output = config.output_dir
    context = distributed.init_from_env("cuda" if wants_cuda(config) else "cpu")
    compute = resolve_compute(config, context)
    state_dir = output / "resume"
    if config.resume:
        if not has_resume_state(state_dir):
            raise UsageError(f"--resume but {output} holds no resume state (expected {state_dir}/)")
        check_resume_compatible(config, read_resume_config(state_dir))
    elif has_resume_state(state_dir):
        raise UsageError(
            f"{output} already holds a run; pass --resume to continue it "
            "or choose another --output-dir"
        )
    seed_everything(config.seed)
    data = build_data_pipeline(config, context, pin_memory=compute.device.type == "cuda")
    model_config = config.model_config(num_classes=data.num_classes)
    network = build_model(model_config, pretrained=config.pretrained)
    criterion = ReIDCriterion(
        data.num_classes,
        model_config.embedding_dim,
        LossWeights(**config.loss_weights),
        label_smoothing=config.label_smoothing,
        triplet_margin=config.triplet_margin,
        uniformity_form=config.uniformity_form,
    )
    compute.prepare(network)
    criterion.to(compute.device)
    optimizer = build_optimizer([network, criterion], config, heads=[network.classifier, criterion])
    schedule = EpochSchedule(optimizer, config)
    progress = Progress(epoch=0, global_step=0, best_map=-1.0, best_epoch=0)
    if config.resume:
        progress = load_resume_state(
            state_dir,
            network=network,
            criterion=criterion,
            optimizer=optimizer,
        )
    record_schedule(progress, config)
    objective: nn.Module = TrainingObjective(network, criterion)
    if context.enabled:
        # A zero-weighted term is never computed, so its parameters get no gradient.
        unused = any(weight == 0 for weight in config.loss_weights.values())
        objective = DistributedDataParallel(
            objective,
            device_ids=[compute.device.index] if compute.device.type == "cuda" else None,
            find_unused_parameters=unused,
        )
    log = None
    if context.is_main:
        output.mkdir(parents=True, exist_ok=True)
        log = RunLog(output)
        if config.resume:
            log.truncate_after(progress.epoch)
        (output / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return RunState(
        config=config,
        context=context,
        compute=compute,
        data=data,
        network=network,
        criterion=criterion,
        objective=objective,
        optimizer=optimizer,
        schedule=schedule,
        progress=progress,
        log=log,
        started_at=started_at,
    )


SCHEDULE_FIELDS = (
    "epochs",
    "optimizer",
    "lr",
    "warmup_epochs",
    "warmup_start_factor",
    "lr_milestones",
    "lr_gamma",
)


def record_schedule(progress: Progress, config: TrainConfig) -> None:
    """Append this start's lr recipe to the history, unless it is the one already in force."""
    recipe = {key: config.to_dict()[key] for key in SCHEDULE_FIELDS}
    last = progress.schedule_history[-1] if progress.schedule_history else None
    if last is None or {key: last[key] for key in SCHEDULE_FIELDS} != recipe:
        progress.schedule_history.append({"from_epoch": progress.epoch + 1, **recipe})


def check_resume_compatible(config: TrainConfig, saved: dict[str, Any]) -> None:
    """Refuse to continue ``saved`` (a recorded config) with a different network or setup."""
    current = config.to_dict()
    changed = [
        key for key in resume_locked_fields() if _as_recorded(key, saved.get(key)) != current[key]
    ]
    if changed:
        details = ", ".join(f"{key}: {saved.get(key)!r} -> {current[key]!r}" for key in changed)
        raise UsageError(f"cannot resume with a different setup ({details})")
    if saved.get("epochs", 0) > config.epochs:
        raise UsageError(
            f"cannot resume a {saved['epochs']}-epoch run with --epochs {config.epochs}"
        )


def _as_recorded(key: str, value: Any) -> Any:
    """A saved value in today's recorded form, so a run saved before a field's type widened
    (``data_dir = "/x"`` before joint training made it a list) still resumes."""
    try:
        return from_mapping({key: value}).to_dict()[key]
    except ConfigError:
        return value
