"""Calibrate open-set thresholds from any labelled set of embeddings.

A labelled set has no gallery or probes of its own, so it is given one: each identity
enrolls part of its images and probes with the rest. Every probe is then used twice.
Against its own identity it is mated (counted, so a reader knows what the set held);
against everyone else it is non-mated: its own identity's column is left out
(`fit_calibration`'s ``own_column``), which is exactly a probe of a person the gallery
does not hold. Withholding half the identities instead, as this did before, left half
the people out of the gallery and half out of the probes: the tail rested on a quarter
of the impostor pairs, and the size model had to be carried from half the gallery to
all of it. Used by ``training.run`` (held-out training identities) and
``training.calibrate``.
"""

from __future__ import annotations

import numpy as np
import torch

from model.evaluation.calibration import Calibration, CalibrationError
from model.evaluation.calibration_bootstrap import DEFAULT_CONFIDENCE
from model.evaluation.calibration_fit import entry_scores, fit_calibration
from model.evaluation.open_set import ArrayLike, identity_scores

DEFAULT_GALLERY_FRACTION = 0.5  # of each enrolled identity's images


def gallery_probe_split(
    pids: np.ndarray, *, gallery_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the gallery entries and of the probes.

    Each identity puts ``gallery_fraction`` of its images (at least one) into the
    gallery, and the rest, if any, are its probes.
    """
    if not 0.0 < gallery_fraction <= 1.0:
        raise CalibrationError(f"gallery_fraction must be in (0, 1], got {gallery_fraction!r}")
    rng = np.random.default_rng(seed)
    gallery: list[np.ndarray] = []
    probes: list[np.ndarray] = []
    for pid in np.unique(pids):
        rows = rng.permutation(np.flatnonzero(pids == pid))
        enrolled = max(1, round(gallery_fraction * len(rows)))
        gallery.append(rows[:enrolled])
        probes.append(rows[enrolled:])
    return np.sort(np.concatenate(gallery)), np.sort(np.concatenate(probes))


def calibrate_labelled_set(
    features: ArrayLike,
    pids: ArrayLike,
    *,
    gallery_fraction: float = DEFAULT_GALLERY_FRACTION,
    gallery_identities: int | None = None,
    seed: int = 0,
    confidence: float | None = DEFAULT_CONFIDENCE,
) -> Calibration:
    """Fit a `Calibration` on labelled embeddings (rows of ``features``, one pid each).

    ``gallery_identities`` is the size its stated thresholds are for (default: the
    identity count); `Calibration.threshold_for` answers for any other size.
    ``confidence``: see `calibration_bootstrap` (None: the plain fit).
    Raises `CalibrationError` when the set is too small to calibrate on.
    """
    labels = np.asarray(pids.cpu() if isinstance(pids, torch.Tensor) else pids, dtype=np.int64)
    if labels.ndim != 1 or len(labels) != len(features):
        raise CalibrationError(f"need one pid per feature row: {len(labels)} for {len(features)}")
    if len(np.unique(labels)) < 2:
        raise CalibrationError(
            f"a calibration needs at least 2 identities, got {len(np.unique(labels))}"
        )
    gallery_rows, probe_rows = gallery_probe_split(
        labels, gallery_fraction=gallery_fraction, seed=seed
    )
    if len(probe_rows) == 0:
        raise CalibrationError("no identity has an image left to probe with after enrolling")
    matrix = torch.as_tensor(features)
    probe_features = matrix[torch.from_numpy(probe_rows)]
    gallery_features = matrix[torch.from_numpy(gallery_rows)]
    scores = identity_scores(probe_features, gallery_features, labels[gallery_rows])
    own_column = np.searchsorted(scores.identities, labels[probe_rows])
    return fit_calibration(
        scores.scores,
        gallery_identities=gallery_identities,
        entries=entry_scores(probe_features, gallery_features, labels[gallery_rows], seed=seed),
        own_column=own_column,
        mated_probes=len(probe_rows),
        probe_groups=labels[probe_rows],
        confidence=confidence,
        seed=seed,
    )
