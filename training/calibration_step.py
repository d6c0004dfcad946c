"""Calibrate a saved checkpoint's open-set thresholds and write them into its card.

Shared by the end of ``training.run`` (on the held-out training identities) and by
``python -m training.calibrate`` (on any labelled set). The checkpoint is loaded from
disk rather than taken from memory, so ``best/`` is calibrated with the weights it
actually holds, not the last epoch's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import torch

from model.checkpoint import load_checkpoint, write_model_card
from model.compute import ComputeSettings
from model.evaluation.calibration import Calibration
from model.evaluation.calibration_bootstrap import DEFAULT_CONFIDENCE
from model.evaluation.labelled_calibration import calibrate_labelled_set
from training.engine import extract_split


def calibrate_checkpoint(
    directory: Path,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    compute: ComputeSettings,
    *,
    gallery_identities: int | None = None,
    seed: int = 0,
    flip: bool = False,
    confidence: float | None = DEFAULT_CONFIDENCE,
) -> Calibration:
    """Embed the labelled ``batches`` with the checkpoint, fit, and rewrite its card.

    Raises ``CheckpointError`` for a bad checkpoint and ``CalibrationError`` when the
    set cannot support a calibration; the card is then left as it was.
    """
    network, card = load_checkpoint(directory)
    split = extract_split(network, batches, compute, flip=flip)
    calibration = calibrate_labelled_set(
        split.features,
        split.pids,
        gallery_identities=gallery_identities,
        seed=seed,
        confidence=confidence,
    )
    write_model_card(directory, dataclasses.replace(card, calibration=calibration))
    return calibration
