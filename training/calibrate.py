"""Calibrate an existing checkpoint's open-set thresholds on a labelled set.

    python -m training.calibrate --checkpoint runs/x/best --data-dir data/market1501
    python -m training.calibrate --checkpoint runs/x/best --data-dir crops/ --layout folder
    python -m training.calibrate --checkpoint runs/x/best --data-dir data/market1501 \
        --held-out-of runs/x

Every identity of the set is used (for a benchmark layout: its training split, the
identities the benchmark does not test on, so the calibration stays independent of the
evaluation). A checkpoint trained on that split has seen those people, so its scores
there are better separated than on strangers; ``--held-out-of RUN`` keeps only the
training identities that run held out of training (``calibration_fraction``), the set
its own calibration was fitted on. Every identity enrolls a seeded half of its images
and probes with the rest; a probe is non-mated against every identity but its own
(`model.evaluation.labelled_calibration`). The fitted `model.evaluation.calibration.Calibration`
replaces the card's (atomically; the weights, and therefore the model version, are untouched) and is
printed as JSON. Bad input is a usage error (exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from model.checkpoint import CheckpointError, read_model_card
from model.compute import SWITCHES, ComputeSettings
from model.evaluation.calibration import CalibrationError
from model.evaluation.calibration_bootstrap import DEFAULT_CONFIDENCE
from model.evaluation.layouts.catalogue import LAYOUT_NAMES, read_layout
from model.evaluation.layouts.records import DISTRACTOR_PID, DatasetLayoutError, ImageRecord
from training.calibration_step import calibrate_checkpoint
from training.data.dataset import EmptyDatasetError, ReIDImageDataset
from training.loaders import hold_out_identities
from training.transforms import build_eval_transform
from training.usage import UsageError, run_command

BATCH_SIZE = 64


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.calibrate",
        description="Fit open-set thresholds (FPIR 10%, 1%, 0.1%, for any gallery size) "
        "for a checkpoint on a labelled set and write them into its model card.",
    )
    parser.add_argument("--checkpoint", type=Path, required=True, metavar="DIR")
    parser.add_argument("--data-dir", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--layout",
        choices=LAYOUT_NAMES,
        default="market",
        help="the benchmark layouts calibrate on their training split, the identities "
        "they do not test on; folder: root/<identity>/",
    )
    parser.add_argument(
        "--gallery-identities",
        type=int,
        default=None,
        metavar="N",
        help="gallery size the card's stated thresholds are for (default: the identity count)",
    )
    parser.add_argument(
        "--held-out-of",
        type=Path,
        default=None,
        metavar="RUN",
        help="only the training identities this run directory held out of training",
    )
    parser.add_argument(
        "--confidence",
        type=parse_confidence,
        default=DEFAULT_CONFIDENCE,
        metavar="C",
        help="share of people-resampled calibrations whose promise the thresholds keep, in "
        "[0.5, 1), or 'none' for the plain fit (default: none; docs/open_set.md)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--amp", choices=SWITCHES, default="auto")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the calibration; returns the exit status (2 for usage errors) instead of exiting."""
    status, args, report = run_command(build_parser(), argv, _calibrate)
    if args is not None:
        print(json.dumps(report, indent=2))
    return status


def _calibrate(args: argparse.Namespace) -> dict[str, object]:
    if args.gallery_identities is not None and args.gallery_identities < 1:
        raise UsageError(f"--gallery-identities must be >= 1, got {args.gallery_identities}")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise UsageError(f"--device: {args.device!r} is not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device: CUDA was requested but is not available on this machine")
    records = _records(args.data_dir, args.layout)
    if args.held_out_of is not None:
        records = _held_out_by(args.held_out_of, records)
    try:
        size = read_model_card(args.checkpoint).config.input_size
    except CheckpointError as error:
        raise UsageError(f"--checkpoint: {error}") from None
    try:
        dataset = ReIDImageDataset(records, build_eval_transform(size), relabel=False)
    except EmptyDatasetError as error:
        raise UsageError(f"--data-dir: {error}") from None
    if dataset.skipped:
        first = dataset.skipped[0]
        raise UsageError(
            f"--data-dir: {len(dataset.skipped)} image(s) do not decode (first: {first.path}: "
            f"{first.reason}); a calibration must not silently drop images"
        )
    try:
        calibration = calibrate_checkpoint(
            args.checkpoint,
            DataLoader(dataset, batch_size=BATCH_SIZE),
            ComputeSettings.resolve(device, args.amp, args.amp),
            gallery_identities=args.gallery_identities,
            seed=args.seed,
            flip=args.flip,
            confidence=args.confidence,
        )
    except CheckpointError as error:
        raise UsageError(f"--checkpoint: {error}") from None
    except CalibrationError as error:
        raise UsageError(f"cannot calibrate on {args.data_dir}: {error}") from None
    return {"checkpoint": str(args.checkpoint), "calibration": calibration.to_dict()}


def parse_confidence(text: str) -> float | None:
    """argparse type: 'none', or a share in [0.5, 1)."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or 'none'") from None
    if not 0.5 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0.5, 1) or 'none', got {value}")
    return value


def _held_out_by(run: Path, records: list[ImageRecord]) -> list[ImageRecord]:
    """The records of the identities ``run`` held out, chosen as its trainer chose them."""
    try:
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        fraction, seed = float(config["calibration_fraction"]), int(config["seed"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"--held-out-of: cannot read {run / 'config.json'}: {error}") from None
    _, held_out, note = hold_out_identities(records, fraction, seed=seed)
    if not held_out:
        raise UsageError(f"--held-out-of: {run} held no identities out ({note or fraction})")
    return held_out


def _records(root: Path, layout: str) -> list[ImageRecord]:
    """The labelled crops; Market-1501 distractors (pid 0) are many people, so they go."""
    if not root.is_dir():
        raise UsageError(f"--data-dir: {root} does not exist or is not a directory")
    try:
        records = read_layout(layout, root).train
    except DatasetLayoutError as error:
        raise UsageError(f"--data-dir: {error}") from None
    return [record for record in records if record.pid != DISTRACTOR_PID]


if __name__ == "__main__":
    sys.exit(main())
