"""The ``--open-set`` part of ``python -m training.evaluate``.

The benchmark's gallery becomes an open-set one: a seeded share of its identities is
withheld, so their queries are non-mated. Market-1501 ``0000`` distractors are removed
from the gallery first: they are many different people under one label, not an identity
anyone enrolls. The same-camera rule of the closed-set protocol applies to mated scores.
When the checkpoint's card carries a calibration, its thresholds are taken for this
gallery's size and the FPIR they actually give here is reported beside the promise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model.evaluation.calibration import Calibration
from model.evaluation.layouts.records import DISTRACTOR_PID
from model.evaluation.open_set import (
    FPIR_TARGETS,
    IdentityScores,
    det_curve,
    entries_per_enrolled_identity,
    identity_scores,
    open_set_summary,
    operating_point,
    split_open_set,
    withhold_identities,
)
from training.open_set_plots import plot_det, plot_score_histograms

DET_FILE = "det.png"
HISTOGRAM_FILE = "open_set_scores.png"


def query_identity_scores(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, IdentityScores]:
    """The gallery's pids without ``0000`` distractors (many people under one label), and
    every query's score against each of its identities, the closed-set protocol's
    same-camera rule applied to a query's own identity."""
    keep = arrays["gallery_pids"] != DISTRACTOR_PID
    gallery_pids = arrays["gallery_pids"][keep]
    scores = identity_scores(
        arrays["query_features"],
        arrays["gallery_features"][keep],
        gallery_pids,
        query_pids=arrays["query_pids"],
        query_camids=arrays["query_camids"],
        gallery_camids=arrays["gallery_camids"][keep],
    )
    return gallery_pids, scores


def open_set_report(
    arrays: dict[str, np.ndarray],
    *,
    withheld_fraction: float,
    seed: int,
    calibration: Calibration | None,
    plot_dir: Path | None,
) -> dict[str, Any]:
    """FNIR at FPIR 10%/1%/0.1%, DIR at rank 1, the calibration check; ValueError if undefined."""
    gallery_pids, scores = query_identity_scores(arrays)
    withheld = withhold_identities(gallery_pids, withheld_fraction, seed=seed)
    split = split_open_set(scores, arrays["query_pids"], withheld)
    report: dict[str, Any] = {
        **open_set_summary(split),
        "withheld_identities": len(withheld),
        "withheld_fraction": withheld_fraction,
        "seed": seed,
        "calibrated": None,
    }
    if calibration is not None:
        entries = entries_per_enrolled_identity(gallery_pids, withheld)
        report["entries_per_identity"] = entries
        report["calibrated"] = [
            _calibrated_point(split, calibration, target, entries) for target in FPIR_TARGETS
        ]
    if plot_dir is not None:
        points = [operating_point(split, target) for target in FPIR_TARGETS]
        marks = [(p.fpir, p.fnir) for p in points if p.fpir is not None and p.fnir is not None]
        report["plots"] = [
            str(plot_det(det_curve(split), plot_dir / DET_FILE, marks=marks)),
            str(plot_score_histograms(split, plot_dir / HISTOGRAM_FILE)),
        ]
    return report


def _calibrated_point(
    split: Any, calibration: Calibration, target: float, entries_per_identity: float
) -> dict[str, Any]:
    """The promised FPIR at this gallery's size, and what the threshold gives here."""
    threshold = calibration.threshold_for(target, split.gallery_identities, entries_per_identity)
    observed = float(split.fpir(threshold))
    return {
        "target_fpir": target,
        "threshold": threshold,
        "observed_fpir": observed,
        "observed_over_target": observed / target,
        "fnir": float(split.fnir(threshold)),
        # Below 1/target non-mated probes, an observed FPIR of 0 says little.
        "resolvable": len(split.nonmated_scores) * target >= 1.0,
    }
