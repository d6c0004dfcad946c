"""How much a calibration's promise rests on which people it happened to see.

A calibration's impostor tail is measured on a few dozen enrolled identities and the
probes of a few dozen others. Impostor scores cluster by person: one enrolled identity
who looks like many others, or one probe identity who looks generic, puts many scores in
the tail at once. So the tail varies far more from one sample of people to another than
the raw count of scores suggests. On Market-1501, two runs calibrated on 37 enrolled
identities each missed the 1% promise in opposite directions (0.6x and 2.4-3.9x;
docs/open_set.md).

`fpir_spread` measures that variation with a two-way cluster bootstrap: resample the
enrolled identities (columns) and the non-mated probe identities (groups of rows), each
with replacement, refit the tail exactly as the calibration did (form choice included),
and read the FPIR each stated threshold would then have been promised at the stated
gallery size. The size and entries models are kept: they are ratios that move much less.
The result is the ``SPREAD_QUANTILES`` of those rates per threshold, a band to report
beside the promise, not a correction of it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from model.evaluation.calibration import Calibration, CalibrationError
from model.evaluation.calibration_tail import TailFit, fit_tail

SPREAD_QUANTILES = (0.1, 0.9)
MIN_SPREAD_REPLICATES = 20
MAX_SPREAD_REPLICATES = 100
# Each replicate sorts its resampled matrix; this many scores in all keeps the bootstrap
# to a few seconds on two cores (about 90 replicates for a Market-sized calibration).
MAX_SPREAD_SCORES = 40_000_000


def fpir_spread(
    nonmated_scores: np.ndarray,
    calibration: Calibration,
    *,
    probe_groups: np.ndarray | None,
    seed: int,
) -> dict[str, tuple[float, float]]:
    """The low and high ``SPREAD_QUANTILES`` of the FPIR each of ``calibration``'s stated
    thresholds is promised at its ``gallery_identities``, over calibrations refitted on
    resampled identities.

    ``probe_groups`` gives each row's probe identity; without
    it each row is its own group, which understates the spread of clustered data.
    Replicates whose resampled tail cannot be modelled (all top scores tied) are skipped;
    with fewer than ``MIN_SPREAD_REPLICATES`` left the spread is empty.
    """
    matrix = np.asarray(nonmated_scores, dtype=np.float64)
    probes, identities = matrix.shape
    groups = np.arange(probes) if probe_groups is None else np.asarray(probe_groups)
    if groups.shape != (probes,):
        raise CalibrationError(f"need one probe group per row: {groups.shape} for {probes} rows")
    _, group_of_row = np.unique(groups, return_inverse=True)
    members = np.split(
        np.argsort(group_of_row, kind="stable"), np.cumsum(np.bincount(group_of_row))[:-1]
    )
    replicates = int(
        np.clip(MAX_SPREAD_SCORES // matrix.size, MIN_SPREAD_REPLICATES, MAX_SPREAD_REPLICATES)
    )
    rng = np.random.default_rng(seed)
    rates: list[list[float]] = []
    for _ in range(replicates):
        rows = np.concatenate([members[g] for g in rng.integers(len(members), size=len(members))])
        columns = rng.integers(identities, size=identities)
        try:
            refitted = _with_tail(calibration, fit_tail(matrix[np.ix_(rows, columns)].ravel()))
        except CalibrationError:
            continue
        rates.append(
            [
                refitted.false_positive_rate(threshold, calibration.gallery_identities)
                for threshold in calibration.thresholds.values()
            ]
        )
    if len(rates) < MIN_SPREAD_REPLICATES:
        return {}
    low, high = np.quantile(np.asarray(rates), SPREAD_QUANTILES, axis=0)
    return {
        key: (float(a), float(b))
        for key, a, b in zip(calibration.thresholds, low, high, strict=True)
    }


def _with_tail(calibration: Calibration, tail: TailFit) -> Calibration:
    return dataclasses.replace(
        calibration,
        survival_scores=tail.levels,
        survival=tail.survival,
        tail_start=tail.levels[-1],
        tail_probability=tail.survival[-1],
        tail_rate=tail.rate,
        tail_curvature=tail.curvature,
        tail_form=tail.form,
        fpir_spread={},
    )
