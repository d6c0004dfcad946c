"""Calibrate open-set thresholds from any labelled set of embeddings.

A labelled set has no gallery or probes of its own, so it is given one: a seeded
fraction of identities is withheld (all their images become non-mated probes), and
each remaining identity enrolls part of its images and probes with the rest (mated
probes). Only the non-mated probes' scores against the enrolled identities shape the
calibration; the mated probes are counted so a reader knows what the set held. Used by
``training.run`` (held-out training identities) and ``training.calibrate``.
"""

from __future__ import annotations

import numpy as np
import torch

from model.evaluation.calibration import Calibration, CalibrationError
from model.evaluation.calibration_bootstrap import DEFAULT_CONFIDENCE
from model.evaluation.calibration_fit import entry_scores, fit_calibration
from model.evaluation.open_set import (
    DEFAULT_WITHHELD_FRACTION,
    ArrayLike,
    identity_scores,
    withhold_identities,
)

DEFAULT_GALLERY_FRACTION = 0.5  # of each enrolled identity's images


def gallery_probe_split(
    pids: np.ndarray, withheld: np.ndarray, *, gallery_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the gallery entries and of the probes.

    Each enrolled identity puts ``gallery_fraction`` of its images (at least one) into
    the gallery and the rest, if any, are its mated probes; withheld identities only probe.
    """
    if not 0.0 < gallery_fraction <= 1.0:
        raise CalibrationError(f"gallery_fraction must be in (0, 1], got {gallery_fraction!r}")
    rng = np.random.default_rng(seed)
    gallery: list[np.ndarray] = []
    probes: list[np.ndarray] = [np.flatnonzero(np.isin(pids, withheld))]
    for pid in np.setdiff1d(np.unique(pids), withheld):
        rows = rng.permutation(np.flatnonzero(pids == pid))
        enrolled = max(1, round(gallery_fraction * len(rows)))
        gallery.append(rows[:enrolled])
        probes.append(rows[enrolled:])
    return np.sort(np.concatenate(gallery)), np.sort(np.concatenate(probes))


def calibrate_labelled_set(
    features: ArrayLike,
    pids: ArrayLike,
    *,
    withheld_fraction: float = DEFAULT_WITHHELD_FRACTION,
    gallery_fraction: float = DEFAULT_GALLERY_FRACTION,
    gallery_identities: int | None = None,
    seed: int = 0,
    confidence: float | None = DEFAULT_CONFIDENCE,
) -> Calibration:
    """Fit a `Calibration` on labelled embeddings (rows of ``features``, one pid each).

    ``gallery_identities`` is the size its stated thresholds are for (default: the
    enrolled identity count); `Calibration.threshold_for` answers for any other size.
    ``confidence``: see `calibration_bootstrap` (None: the plain fit).
    Raises `CalibrationError` when the set is too small to calibrate on.
    """
    labels = np.asarray(pids.cpu() if isinstance(pids, torch.Tensor) else pids, dtype=np.int64)
    if labels.ndim != 1 or len(labels) != len(features):
        raise CalibrationError(f"need one pid per feature row: {len(labels)} for {len(features)}")
    try:
        withheld = withhold_identities(labels, withheld_fraction, seed=seed)
    except ValueError as error:
        raise CalibrationError(str(error)) from None
    gallery_rows, probe_rows = gallery_probe_split(
        labels, withheld, gallery_fraction=gallery_fraction, seed=seed
    )
    matrix = torch.as_tensor(features)
    scores = identity_scores(
        matrix[torch.from_numpy(probe_rows)],
        matrix[torch.from_numpy(gallery_rows)],
        labels[gallery_rows],
    )
    nonmated = np.isin(labels[probe_rows], withheld)
    entries = entry_scores(
        matrix[torch.from_numpy(probe_rows[nonmated])],
        matrix[torch.from_numpy(gallery_rows)],
        labels[gallery_rows],
        seed=seed,
    )
    return fit_calibration(
        scores.scores[nonmated],
        gallery_identities=gallery_identities,
        entries=entries,
        mated_probes=int((~nonmated).sum()),
        withheld_identities=len(withheld),
        probe_groups=labels[probe_rows][nonmated],
        confidence=confidence,
        seed=seed,
    )
