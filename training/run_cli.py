"""The flags of ``python -m training.run``, parsed into one validated `TrainConfig`.

Only this module knows about argparse: every flag defaults to "not given" so
that the preset and ``--config`` layers underneath keep their values, and every
problem, including what only the config's validation can see, leaves through
``parser.error`` as a usage error (exit status 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from model.compute import SWITCHES
from model.config import ARCHS, ATTENTION_COMBINATIONS, ATTENTION_MODES, HEADS, LAST_STRIDES
from model.losses.uniformity import UNIFORMITY_FORMS
from training.config import (
    DEVICES,
    LAYOUTS,
    OPTIMIZERS,
    ConfigError,
    TrainConfig,
)
from training.config_sources import (
    build_config,
    parse_loss_weights,
    preset_names,
)


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
    data.add_argument(
        "--data-dir",
        type=Path,
        action="append",
        default=suppress,
        help="dataset root folder; repeat to train on several datasets jointly "
        "(the first one's query/gallery is evaluated)",
    )
    data.add_argument(
        "--layout",
        choices=LAYOUTS,
        action="append",
        default=suppress,
        help="dataset layout: once for every --data-dir, or once per --data-dir in order",
    )
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
    data.add_argument(
        "--calibration-fraction",
        type=float,
        default=suppress,
        metavar="F",
        help="share of training identities held out to calibrate open-set thresholds "
        "(default 0.1; 0 disables)",
    )
    data.add_argument("--output-dir", type=Path, default=suppress, help="run directory")
    net = parser.add_argument_group("model")
    net.add_argument("--arch", choices=ARCHS, default=suppress)
    net.add_argument("--attention", choices=ATTENTION_MODES, default=suppress)
    net.add_argument("--attention-combination", choices=ATTENTION_COMBINATIONS, default=suppress)
    net.add_argument("--head", choices=HEADS, default=suppress)
    net.add_argument("--last-stride", type=int, choices=LAST_STRIDES, default=suppress)
    net.add_argument(
        "--input-height", type=int, default=suppress, help="crop height the network takes"
    )
    net.add_argument("--input-width", type=int, default=suppress, help="crop width")
    net.add_argument("--pretrained", type=Path, default=suppress, help="local ImageNet weights")
    recipe = parser.add_argument_group("recipe")
    recipe.add_argument("--epochs", type=int, default=suppress)
    recipe.add_argument("--batch-p", type=int, default=suppress, help="identities per batch")
    recipe.add_argument("--batch-k", type=int, default=suppress, help="images per identity")
    recipe.add_argument("--optimizer", choices=OPTIMIZERS, default=suppress)
    recipe.add_argument("--lr", type=float, default=suppress)
    recipe.add_argument("--weight-decay", type=float, default=suppress)
    recipe.add_argument(
        "--backbone-lr-factor",
        type=float,
        default=suppress,
        help="lr multiplier for all but the classifiers (the authors' recipe: 0.1)",
    )
    recipe.add_argument("--warmup-epochs", type=int, default=suppress)
    recipe.add_argument(
        "--uniformity-form",
        choices=UNIFORMITY_FORMS,
        default=suppress,
        help="l1: the paper's text; hinge: the authors' code, differentiable",
    )
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
    runtime.add_argument(
        "--decode-once",
        action=argparse.BooleanOptionalAction,
        default=suppress,
        help="decode every crop once and keep it in memory (fast on CPU hosts)",
    )
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
    if not config.data_dir and not config.synthetic:
        parser.error("--data-dir is required (or pass --synthetic to generate a dataset)")
    if config.pretrained is not None and not config.pretrained.is_file():
        parser.error(f"--pretrained {config.pretrained} is not a file")
    if config.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    return config
