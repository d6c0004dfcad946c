"""Train the attentive re-identification network: ``python -m training.run``.

    python -m training.run --preset cpu-synthetic --synthetic --output-dir runs/demo
    python -m training.run --preset market1501-resnet50 --data-dir ~/data/Market-1501 \\
        --output-dir runs/market --pretrained ~/weights/resnet50.pth
    torchrun --nproc-per-node 4 -m training.run --preset market1501-resnet50 ...

A run directory ends up holding ``best/`` and ``last/`` model checkpoints (what
``model.checkpoint.load_checkpoint`` and the service read), ``resume/`` (what
``--resume`` continues from), ``metrics.jsonl``/``metrics.csv``, ``config.json``
and the plots ``cmc.png``, ``attention.png`` and ``ranked_lists.png``.

Everything that can be checked before the first batch (flags, preset, dataset
layout, resume state, pretrained weights file) is, and a problem is reported as
a usage error (exit status 2) naming what was expected, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import model  # noqa: F401  (makes torchvision importable on CPU-only torch)
from model.backbone import PretrainedWeightsError
from model.checkpoint import CheckpointError, save_checkpoint
from model.compute import SWITCHES, ComputeSettings
from model.config import ARCHS, ATTENTION_COMBINATIONS, ATTENTION_MODES, HEADS, LAST_STRIDES
from model.evaluation.market_layout import DatasetLayoutError
from model.losses import LossWeights, ReIDCriterion
from model.network import ReIDNet, build_model
from training import distributed
from training.checkpointing import (
    Progress,
    ResumeError,
    has_resume_state,
    load_resume_state,
    read_resume_config,
    save_resume_state,
)
from training.config import (
    DEVICES,
    LAYOUTS,
    OPTIMIZERS,
    ConfigError,
    TrainConfig,
    build_config,
    parse_loss_weights,
    preset_names,
    resume_locked_fields,
)
from training.engine import (
    EvaluationResult,
    TrainingDivergedError,
    TrainingObjective,
    evaluate,
    train_one_epoch,
)
from training.loaders import DataPipeline, DataSetupError, build_data_pipeline
from training.optim import build_optimizer, build_scheduler
from training.plots import write_run_plots
from training.run_log import RunLog


class UsageError(ValueError):
    """Something the user asked for cannot work; reported as exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.run",
        description="Train the attentive Siamese re-identification network.",
        epilog=f"presets: {', '.join(preset_names())}. Flags override the preset and --config.",
    )
    add = parser.add_argument
    suppress = argparse.SUPPRESS
    add("--preset", default=None, help="named recipe from training/presets/")
    add("--config", type=Path, default=None, metavar="FILE.toml", help="TOML overrides")
    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", type=Path, default=suppress, help="dataset root folder")
    data.add_argument("--layout", choices=LAYOUTS, default=suppress, help="dataset layout")
    data.add_argument(
        "--synthetic",
        action="store_true",
        default=suppress,
        help="generate a synthetic Market-1501 set (into --data-dir if absent, "
        "else OUTPUT/synthetic-data) and train on it",
    )
    data.add_argument(
        "--eval-dir",
        type=Path,
        default=suppress,
        help="Market-1501 folder to evaluate on (default: --data-dir's query/gallery)",
    )
    data.add_argument("--output-dir", type=Path, default=suppress, help="run directory")
    net = parser.add_argument_group("model")
    net.add_argument("--arch", choices=ARCHS, default=suppress)
    net.add_argument("--attention", choices=ATTENTION_MODES, default=suppress)
    net.add_argument("--attention-combination", choices=ATTENTION_COMBINATIONS, default=suppress)
    net.add_argument("--head", choices=HEADS, default=suppress)
    net.add_argument("--last-stride", type=int, choices=LAST_STRIDES, default=suppress)
    net.add_argument("--pretrained", type=Path, default=suppress, help="local ImageNet weights")
    recipe = parser.add_argument_group("recipe")
    recipe.add_argument("--epochs", type=int, default=suppress)
    recipe.add_argument("--batch-p", type=int, default=suppress, help="identities per batch")
    recipe.add_argument("--batch-k", type=int, default=suppress, help="images per identity")
    recipe.add_argument("--optimizer", choices=OPTIMIZERS, default=suppress)
    recipe.add_argument("--lr", type=float, default=suppress)
    recipe.add_argument("--weight-decay", type=float, default=suppress)
    recipe.add_argument("--warmup-epochs", type=int, default=suppress)
    recipe.add_argument(
        "--lr-milestones",
        type=_int_list,
        default=suppress,
        metavar="E1,E2",
        help="epochs at which the lr is multiplied by lr_gamma",
    )
    recipe.add_argument(
        "--loss-weights",
        default=suppress,
        metavar="id=1,triplet=1,verification=0.5,uniformity=0.1",
        help="weights of the loss terms (unnamed terms keep their value)",
    )
    runtime = parser.add_argument_group("runtime")
    runtime.add_argument("--device", choices=DEVICES, default=suppress)
    runtime.add_argument("--amp", choices=SWITCHES, default=suppress, help="bf16 autocast")
    runtime.add_argument("--channels-last", choices=SWITCHES, default=suppress)
    runtime.add_argument("--workers", type=int, default=suppress, help="DataLoader workers")
    runtime.add_argument("--eval-every", type=int, default=suppress, help="evaluate every N epochs")
    runtime.add_argument(
        "--eval-before-training",
        action="store_true",
        default=suppress,
        help="also evaluate the untrained network (logged as epoch 0)",
    )
    runtime.add_argument("--seed", type=int, default=suppress)
    runtime.add_argument("--resume", action="store_true", default=suppress)
    runtime.add_argument("--no-progress", dest="progress", action="store_false", default=suppress)
    runtime.add_argument("--no-plots", dest="plots", action="store_false", default=suppress)
    return parser


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from error


def parse_config(argv: Sequence[str] | None, parser: argparse.ArgumentParser) -> TrainConfig:
    """Parse flags into a validated config; any problem exits via ``parser.error``."""
    args = vars(parser.parse_args(argv))
    preset, config_file = args.pop("preset"), args.pop("config")
    try:
        if "loss_weights" in args:
            args["loss_weights"] = parse_loss_weights(args["loss_weights"])
        config = build_config(preset=preset, config_file=config_file, overrides=args)
    except ConfigError as error:
        parser.error(str(error))
    if config.output_dir is None:
        parser.error("--output-dir is required")
    if config.data_dir is None and not config.synthetic:
        parser.error("--data-dir is required (or pass --synthetic to generate a dataset)")
    if config.pretrained is not None and not config.pretrained.is_file():
        parser.error(f"--pretrained {config.pretrained} is not a file")
    if config.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    return config


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
    scheduler: torch.optim.lr_scheduler.LRScheduler
    progress: Progress
    log: RunLog | None  # None on ranks other than 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def wants_cuda(config: TrainConfig) -> bool:
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
    )
    compute.prepare(network)
    criterion.to(compute.device)
    optimizer = build_optimizer([network, criterion], config)
    scheduler = build_scheduler(optimizer, config, iters_per_epoch=data.iters_per_epoch)
    progress = Progress(epoch=0, global_step=0, best_map=-1.0, best_epoch=0)
    if config.resume:
        progress = load_resume_state(
            state_dir,
            network=network,
            criterion=criterion,
            optimizer=optimizer,
            scheduler=scheduler,
        )
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
        scheduler=scheduler,
        progress=progress,
        log=log,
    )


def check_resume_compatible(config: TrainConfig, saved: dict[str, Any]) -> None:
    """Refuse to continue ``saved`` (a recorded config) with a different network or setup."""
    current = config.to_dict()
    changed = [key for key in resume_locked_fields() if saved.get(key) != current[key]]
    if changed:
        details = ", ".join(f"{key}: {saved.get(key)!r} -> {current[key]!r}" for key in changed)
        raise UsageError(f"cannot resume with a different setup ({details})")
    if saved.get("epochs", 0) > config.epochs:
        raise UsageError(
            f"cannot resume a {saved['epochs']}-epoch run with --epochs {config.epochs}"
        )


def training_data_record(state: RunState, epochs_trained: int) -> dict[str, Any]:
    """Provenance recorded in every model card written by this run."""
    config = state.config
    return {
        **state.data.describe(),
        "epochs_trained": epochs_trained,
        "preset_recipe": {
            key: config.to_dict()[key]
            for key in (
                "epochs",
                "batch_p",
                "batch_k",
                "optimizer",
                "lr",
                "weight_decay",
                "warmup_epochs",
                "lr_milestones",
                "lr_gamma",
                "loss_weights",
                "seed",
            )
        },
    }


def fit(state: RunState) -> Progress:
    """The epoch loop: train, evaluate on schedule, checkpoint, log, plot."""
    config, progress, output = state.config, state.progress, state.config.output_dir
    assert output is not None
    main_rank = state.context.is_main
    last_metrics: dict[str, Any] = {}
    if not state.data.can_evaluate and main_rank:
        print(
            "note: no query/gallery to evaluate on (pass --eval-dir); "
            "best/ and the ranking plots will not be written",
            flush=True,
        )
    if (
        config.eval_before_training
        and state.data.can_evaluate
        and progress.epoch == 0
        and main_rank
    ):
        result = _evaluate(state)
        _announce(0, None, result)
        assert state.log is not None
        state.log.append({"epoch": 0, **_metric_row(result)})
    for epoch in range(progress.epoch + 1, config.epochs + 1):
        state.data.set_epoch(epoch)
        stats = train_one_epoch(
            state.objective,
            state.data.train_loader,
            state.optimizer,
            state.scheduler,
            state.compute,
            description=f"epoch {epoch}/{config.epochs}",
            show_progress=config.progress and main_rank,
            total=state.data.iters_per_epoch,
        )
        progress.epoch = epoch
        progress.global_step += state.data.iters_per_epoch
        images, seconds = stats.images, stats.seconds
        if state.context.enabled:
            images, seconds = distributed.all_reduce_sum(
                [float(images), seconds], state.context, state.compute.device
            )
            images, seconds = int(images), seconds / state.context.world_size
        row: dict[str, Any] = {
            "epoch": epoch,
            "lr": stats.lr,
            **stats.means(),
            "images": images,
            "images_per_s": images / seconds if seconds > 0 else 0.0,
            "epoch_seconds": seconds,
        }
        due = state.data.can_evaluate and (epoch % config.eval_every == 0 or epoch == config.epochs)
        result = _evaluate(state) if due and main_rank else None
        if main_rank:
            if result is not None:
                row.update(_metric_row(result))
                last_metrics = {**_card_metrics(result), "epoch": epoch}
            _announce(epoch, row, result)
            _save(state, result, last_metrics)
            assert state.log is not None
            state.log.append(row)
        distributed.barrier(state.context)
    return progress


def _evaluate(state: RunState) -> EvaluationResult:
    assert state.data.query_loader is not None and state.data.gallery_loader is not None
    return evaluate(
        state.network,
        state.data.query_loader,
        state.data.gallery_loader,
        state.compute,
        flip=state.config.eval_flip,
    )


def _metric_row(result: EvaluationResult) -> dict[str, Any]:
    m = result.metrics
    return {"mAP": m.mAP, "mINP": m.mINP, "rank1": m.rank1, "rank5": m.rank5, "rank10": m.rank10}


def _card_metrics(result: EvaluationResult) -> dict[str, Any]:
    metrics = result.metrics.to_dict()
    metrics.pop("cmc", None)
    return metrics


def _save(state: RunState, result: EvaluationResult | None, last_metrics: dict[str, Any]) -> None:
    """Write last/ (+ resume state), and best/ and the plots when mAP improved."""
    config, progress = state.config, state.progress
    output = config.output_dir
    assert output is not None
    record = training_data_record(state, progress.epoch)
    if result is not None and result.metrics.mAP > progress.best_map:
        progress.best_map = result.metrics.mAP
        progress.best_epoch = progress.epoch
        save_checkpoint(state.network, output / "best", training_data=record, metrics=last_metrics)
        if config.plots:
            write_run_plots(
                state.network,
                result,
                state.data.query_records,
                state.data.gallery_records,
                output,
                num_queries=config.plot_queries,
            )
    save_checkpoint(state.network, output / "last", training_data=record, metrics=last_metrics)
    save_resume_state(
        output / "resume",
        network=state.network,
        criterion=state.criterion,
        optimizer=state.optimizer,
        scheduler=state.scheduler,
        progress=progress,
        config=config.to_dict(),
    )


def _announce(epoch: int, row: dict[str, Any] | None, result: EvaluationResult | None) -> None:
    parts = [f"epoch {epoch}"]
    if row is not None:
        parts.append(f"loss {row['loss']:.4f}")
        parts.append(f"lr {row['lr']:.2e}")
        parts.append(f"{row['images_per_s']:.1f} img/s")
    if result is not None:
        parts.append(f"mAP {result.metrics.mAP:.4f}")
        parts.append(f"rank-1 {result.metrics.rank1:.4f}")
    print(" | ".join(parts), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m training.run`` and programmatic use."""
    parser = build_parser()
    config = parse_config(argv, parser)
    started = time.perf_counter()
    try:
        state = prepare(config)
    except (
        UsageError,
        DatasetLayoutError,
        DataSetupError,
        ResumeError,
        CheckpointError,
        PretrainedWeightsError,
    ) as error:
        parser.error(str(error))
    try:
        progress = fit(state)
    except TrainingDivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        distributed.shutdown(state.context)
    if state.context.is_main:
        elapsed = time.perf_counter() - started
        print(
            f"done in {elapsed:.0f}s: best mAP {max(progress.best_map, 0.0):.4f} "
            f"at epoch {progress.best_epoch}; checkpoints in {config.output_dir}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
