"""Fitting a `Calibration`: the impostor tail, the size model and the entries model.

Everything is fitted on the scores of **non-mated** probes (people not enrolled)
against the enrolled identities of a labelled set, scored the way ``POST /query``
scores: an identity's best entry. A probe of an enrolled identity is non-mated too once
its own identity's column is left out (``own_column``): its scores against everyone
else are impostor scores all the same, so every labelled person can both enroll and
probe, and the fit sees the whole gallery rather than the part a withheld split leaves.

The size and entries models are both fitted the same way, by sub-sampling the
calibration gallery (identities for the one, each identity's entries for the other) and
reading how FPIR grows against ``p(T)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from model.evaluation.calibration import Calibration, CalibrationError
from model.evaluation.calibration_bootstrap import DEFAULT_CONFIDENCE, bootstrap_people
from model.evaluation.calibration_tail import fit_tail, impostor_values
from model.evaluation.open_set import FPIR_TARGETS, ArrayLike

MIN_IMPOSTOR_SCORES = 50
# A sub-gallery enters the size and entries fits at a threshold only with this many false
# matches observed, and while FPIR stays below this level (above it FPIR saturates to 1).
MIN_SIZE_FIT_EVENTS = 20
MAX_SIZE_FIT_FPIR = 0.5
SIZE_FIT_REPEATS = 16
ENTRIES_FIT_REPEATS = 8
MAX_ENTRY_PAIRS = 2**25  # probe-by-entry scores kept for the entries fit (128 MiB float32)


@dataclass(frozen=True)
class EntryScores:
    """Non-mated probes' scores against every enrolled *entry*, for the entries fit.

    ``scores`` is (probes, entries): the probe-by-identity matrix's ``rows``, all of them
    or a random subset when all would not fit in memory. ``identity`` gives each entry's
    column in that matrix (0 .. identities - 1).
    """

    scores: np.ndarray
    identity: np.ndarray
    rows: np.ndarray


def entry_scores(
    probe_features: ArrayLike, gallery_features: ArrayLike, gallery_pids: ArrayLike, *, seed: int
) -> EntryScores:
    """Cosine scores of (at most ``MAX_ENTRY_PAIRS`` // entries random) probes against
    every gallery entry, each entry's identity numbered like `identity_scores` numbers
    its columns (sorted pids)."""
    probes = F.normalize(torch.as_tensor(probe_features).float(), dim=1)
    gallery = F.normalize(torch.as_tensor(gallery_features).float(), dim=1)
    pids = np.asarray(gallery_pids)
    _, owner = np.unique(pids, return_inverse=True)
    keep = max(1, MAX_ENTRY_PAIRS // max(1, len(pids)))
    rows = np.arange(len(probes))
    if len(probes) > keep:
        rows = np.sort(np.random.default_rng(seed).choice(len(probes), keep, replace=False))
        probes = probes[torch.from_numpy(rows)]
    return EntryScores((probes @ gallery.T).numpy(), owner.astype(np.int64), rows)


def fit_calibration(
    nonmated_scores: np.ndarray,
    *,
    gallery_identities: int | None = None,
    targets: tuple[float, ...] = FPIR_TARGETS,
    mated_probes: int = 0,
    entries: EntryScores | None = None,
    own_column: ArrayLike | None = None,
    probe_groups: ArrayLike | None = None,
    confidence: float | None = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Calibration:
    """Fit the tail and size models on a (non-mated probe x enrolled identity) score matrix,
    and the entries model on ``entries`` when given (else entries are not modelled).

    ``own_column`` gives, per row, the column of the probe's own enrolled identity, whose
    (mated) scores are left out of every fit, or -1 for a probe of nobody enrolled
    (default: every row is such a probe).

    ``gallery_identities`` is the size the stated ``thresholds`` are for (default: the
    matrix's identity count); the other counts are recorded for provenance.
    ``probe_groups`` names each row's person, so that the bootstrap resamples people
    rather than crops; its ``confidence`` envelope is the curve in force (None: the plain
    fit), and ``fpir_spread`` says how far each stated promise could move
    (`calibration_bootstrap`).
    """
    matrix = np.asarray(nonmated_scores, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise CalibrationError(
            f"need a non-empty (non-mated probes, identities) score matrix, got {matrix.shape}"
        )
    if not np.isfinite(matrix).all():
        raise CalibrationError("impostor scores must be finite")
    probes, identities = matrix.shape
    own = _own_columns(own_column, probes, identities)
    matrix = without_own_columns(matrix, own)
    impostor_scores = impostor_values(matrix)
    if impostor_scores.size < MIN_IMPOSTOR_SCORES:
        raise CalibrationError(
            f"only {impostor_scores.size} impostor scores ({probes} non-mated probes x "
            f"{identities} identities); a calibration needs at least {MIN_IMPOSTOR_SCORES}"
        )
    levels, survival, form, rate, curvature = fit_tail(impostor_scores)
    tail = Calibration(
        gallery_identities=gallery_identities or identities,
        thresholds={},
        survival_scores=levels,
        survival=survival,
        tail_start=levels[-1],
        tail_probability=survival[-1],
        tail_rate=rate,
        tail_curvature=curvature,
        tail_form=form,
    )
    size_scale, size_exponent, points = _fit_size_model(matrix, seed)
    sized = dataclasses.replace(tail, size_scale=size_scale, size_exponent=size_exponent)
    per_identity, entries_exponent, entries_points = (
        _fit_entries_model(entries, matrix, own, seed) if entries else (1.0, 0.0, 0)
    )
    partial = dataclasses.replace(
        sized,
        entries_per_identity=per_identity,
        entries_exponent=entries_exponent,
        counts={
            "impostor_scores": int(impostor_scores.size),
            "nonmated_probes": probes,
            "mated_probes": mated_probes,
            "enrolled_identities": identities,
            "size_fit_points": points,
            "entries_fit_points": entries_points,
        },
    )
    thresholds = {
        str(target): partial.threshold_for(target, partial.gallery_identities) for target in targets
    }
    return bootstrap_people(
        matrix,
        dataclasses.replace(partial, thresholds=thresholds),
        probe_groups=None if probe_groups is None else np.asarray(probe_groups),
        confidence=confidence,
        seed=seed,
    )


def _fit_size_model(matrix: np.ndarray, seed: int) -> tuple[float, float, int]:
    """Fit ``N_eff(n) = scale * n^exponent`` on random sub-galleries of the calibration set.

    For sub-gallery sizes ``n`` from 1 to all identities, each non-mated probe's best
    score over ``n`` random identities is observed; at every threshold with enough false
    matches, ``N_eff = log(1 - FPIR_n) / log(1 - p(T))``. A least-squares line through
    ``(log n, log N_eff)`` gives the model, ``n`` counting the identities a probe really
    met (a sub-gallery holding a probe's own identity is one smaller for it). With fewer
    than two usable sizes there is nothing to fit, and independence (1, 1) is kept;
    ``size_fit_points`` = 0 says so.
    """
    identities = matrix.shape[1]
    rng = np.random.default_rng(seed)
    sizes = np.unique(np.geomspace(1, identities, 8).round().astype(int))
    thresholds, p = _fit_thresholds(matrix)
    xs: list[float] = []
    ys: list[float] = []
    for size in sizes:
        repeats = 1 if size == identities else SIZE_FIT_REPEATS
        subsets = [matrix[:, rng.choice(identities, size, replace=False)] for _ in range(repeats)]
        met = float(np.mean([np.isfinite(subset).sum(axis=1).mean() for subset in subsets]))
        if met <= 0:
            continue  # one identity, and it was every probe's own
        best = np.stack([subset.max(axis=1) for subset in subsets]).ravel()
        effective = _effective_counts(best, thresholds, p, repeats=repeats)
        usable = np.isfinite(effective)
        xs.extend([math.log(met)] * int(usable.sum()))
        ys.extend(np.log(effective[usable]).tolist())
    if len(set(xs)) < 2:
        return 1.0, 1.0, 0
    exponent, intercept = np.polyfit(np.asarray(xs), np.asarray(ys), 1)
    if not exponent > 0:
        return 1.0, 1.0, 0
    return float(math.exp(intercept)), float(exponent), len(xs)


def _fit_thresholds(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds across the whole observed tail, where the operating points lie (from the
    median down to the score only MIN_SIZE_FIT_EVENTS impostor scores reach), with the
    empirical per-identity survival ``p`` at each."""
    ordered = np.sort(impostor_values(matrix))[::-1]
    rarest = min(len(ordered), MIN_SIZE_FIT_EVENTS)
    ranks = np.unique(np.geomspace(rarest, len(ordered) / 2, 32).round().astype(int))
    return ordered[ranks - 1], ranks / len(ordered)


def _fit_entries_model(
    entries: EntryScores, matrix: np.ndarray, own: np.ndarray, seed: int
) -> tuple[float, float, int]:
    """Fit ``(m / m_cal)^exponent`` by keeping at most ``m`` random entries per identity.

    The thresholds and ``p(T)`` are the probe-by-identity ``matrix``'s; at each threshold
    with enough false matches, the effective count of identities is
    ``E = log(1 - FPIR) / log(1 - p(T))``. For each ``m`` from 1 to the largest
    identity's entry count, each probe's best score over the kept entries of all
    identities gives ``E_m``; ``log(E_m / E_all)`` against ``log(mean kept / m_cal)`` is
    a line through the origin whose slope, clipped to [0, 1], is the exponent. A probe's
    own identity's entries (``own``, per matrix row) are left out. Returns
    ``(m_cal, exponent, points)``; with no usable point the exponent stays 0.
    """
    scores = np.asarray(entries.scores, dtype=np.float32)
    owner = np.asarray(entries.identity)
    rows = np.asarray(entries.rows)
    identities = matrix.shape[1]
    if scores.ndim != 2 or scores.shape[1] != len(owner) or scores.size == 0:
        raise CalibrationError("entry scores need probes and one identity per entry")
    if rows.shape != (len(scores),) or rows.min() < 0 or rows.max() >= len(matrix):
        raise CalibrationError("entry scores need one row of the score matrix per probe")
    scores = np.where(owner[None, :] == own[rows][:, None], -np.inf, scores)
    if set(np.unique(owner).tolist()) != set(range(identities)):
        raise CalibrationError("every enrolled identity needs at least one entry score")
    counts = np.bincount(owner, minlength=identities)
    per_identity = float(counts.mean())
    thresholds, p = _fit_thresholds(matrix)
    all_entries = _effective_counts(scores.max(axis=1), thresholds, p, repeats=1)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(owner == j) for j in range(identities)]
    xs: list[float] = []
    ys: list[float] = []
    for size in np.unique(np.geomspace(1, counts.max(), 6).round().astype(int)):
        kept = float(np.minimum(counts, size).mean())
        if kept == per_identity:
            continue  # every entry kept: that is E_all itself
        best = np.concatenate(
            [
                scores[:, _some_entries(members, size, rng)].max(axis=1)
                for _ in range(ENTRIES_FIT_REPEATS)
            ]
        )
        subsampled = _effective_counts(best, thresholds, p, repeats=ENTRIES_FIT_REPEATS)
        usable = np.isfinite(subsampled) & np.isfinite(all_entries)
        xs.extend([math.log(kept / per_identity)] * int(usable.sum()))
        ys.extend(np.log(subsampled[usable] / all_entries[usable]).tolist())
    if not xs:
        return per_identity, 0.0, 0
    x, y = np.asarray(xs), np.asarray(ys)
    return per_identity, float(np.clip((x @ y) / (x @ x), 0.0, 1.0)), len(xs)


def without_own_columns(scores: np.ndarray, own: np.ndarray) -> np.ndarray:
    """A copy of the probe-by-identity ``scores`` with each probe's own identity (``own``,
    its column or -1 for nobody enrolled) at ``-inf``: what is left are impostor scores."""
    masked = np.array(scores, dtype=np.float64)
    rows = np.flatnonzero(own >= 0)
    masked[rows, own[rows]] = -np.inf
    return masked


def _own_columns(own_column: ArrayLike | None, probes: int, identities: int) -> np.ndarray:
    if own_column is None:
        return np.full(probes, -1, dtype=np.int64)
    own = np.asarray(own_column)
    if own.shape != (probes,) or not np.issubdtype(own.dtype, np.integer):
        raise CalibrationError(f"need one integer own column per row: {own.shape} for {probes}")
    if (own < -1).any() or (own >= identities).any():
        raise CalibrationError(f"own columns must be -1 or in [0, {identities})")
    return own.astype(np.int64)


def _effective_counts(
    best: np.ndarray, thresholds: np.ndarray, p: np.ndarray, *, repeats: int
) -> np.ndarray:
    """``log(1 - FPIR) / log(1 - p)`` at each threshold, from probes' best scores; NaN where
    too few false matches were seen or FPIR is near saturation to say."""
    ordered = np.sort(best)
    events = len(ordered) - np.searchsorted(ordered, thresholds, side="left")
    fpir = events / len(ordered)
    usable = (events >= MIN_SIZE_FIT_EVENTS * repeats) & (fpir <= MAX_SIZE_FIT_FPIR) & (p < 1)
    counts = np.full(len(thresholds), np.nan)
    counts[usable] = np.log1p(-fpir[usable]) / np.log1p(-p[usable])
    return counts


def _some_entries(members: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``size`` random entry columns of every identity."""
    return np.concatenate(
        [rng.choice(rows, min(size, len(rows)), replace=False) for rows in members]
    )
