"""FPIR at any gallery size, from how each non-mated probe scores against random identities.

Given the probe, the identities of a gallery are independent draws from the population,
so their scores against that probe are independent too. All the correlation between a
probe's scores comes from the probe itself: one that looks "generic" scores high against
everyone. So with ``p_i(T)`` the chance that ONE random identity scores ``>= T`` against
probe ``i``, exactly

    FPIR_N(T) = mean over probes i of [1 - (1 - p_i(T))^N].

A single pooled ``p(T)`` (``1 - (1 - p(T))^N``) is this formula only when every probe
has the same ``p_i``; with generic probes it misses the few probes that give the rare
false matches, and an effective size fitted on top of it (the previous model) had to
depend on the threshold.

``p_i`` is modelled from a probe's ``location`` (its mean score over the calibration
identities: precise, from hundreds of scores) and a survival function of
``score - location`` shared by a **stratum** of probes with similar locations. One
stratum is a pure location shift; it cannot express that generic probes also have a
narrower tail (on the generated benchmark, docs/open_set.md, one shared shape gave 3x to
over 30x too few false matches at FPIR 0.1%). So probes are split by location into up
to ``MAX_STRATA`` equal-count strata, each with its own tail; how many is chosen by BIC
on the scores above a common level, so that data whose strata do not differ (independent
or purely shifted scores) keep one stratum and all of their tail samples.

A per-probe width was tried as well and left out: the mean excess of a probe's top scores
(smoothed over probes) made the generated benchmark's thresholds 1.2-1.4x too liberal on
its own calibration data at FPIR 1%; the standard deviation of all its scores (as T-norm
uses) 1.4-6x too strict. Known limit: probes whose tail is much narrower than that of
others at a similar location take their stratum's wider tail, which errs on the strict
side, at worst far (FPIR below the promise, so more misses).

A stratum stores its tail and its probes' locations, compressed to at most
``LOCATIONS_PER_STRATUM`` weighted points (see `_summarise`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from model.evaluation.score_tail import (
    TAIL_FRACTION,
    CalibrationError,
    ScoreTail,
    check_keys,
    fit_exceedances,
    fit_score_tail,
    number_list,
)

MAX_STRATA = 4
MIN_STRATUM_EXCEEDANCES = 50  # per stratum, above the common level of the BIC comparison
# A mean over fewer identities is too noisy to tell probes apart: it would add a spread
# of locations that is not there (FPIR too high). Below this all locations are 0.
MIN_LOCATION_IDENTITIES = 20
LOCATIONS_PER_STRATUM = 64
STRATUM_KEYS = {
    "scores",
    "survival",
    "tail_rate",
    "tail_curvature",
    "locations",
    "weights",
}


@dataclass(frozen=True)
class ProbeStratum:
    """Probes whose chance to be outscored is ``tail.survival_at(T - location)``.

    ``weights[k]`` is the share of all non-mated calibration probes that ``locations[k]``
    stands for; the weights of all strata of a calibration sum to 1.
    """

    tail: ScoreTail
    locations: tuple[float, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        locations, weights = np.asarray(self.locations), np.asarray(self.weights)
        if len(locations) == 0 or len(locations) != len(weights):
            raise CalibrationError("probe locations and weights need the same length, at least 1")
        if not np.isfinite(locations).all():
            raise CalibrationError("probe locations must be finite numbers")
        if not (np.isfinite(weights).all() and (weights > 0).all()):
            raise CalibrationError("probe weights must be positive numbers")

    @cached_property
    def _points(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.locations), np.asarray(self.weights)

    def match_rate(self, threshold: float, identities: float) -> float:
        """This stratum's share of FPIR: ``sum_k w_k [1 - (1 - p(T - location_k))^N]``."""
        locations, weights = self._points
        p = self.tail.survival_at(threshold - locations)
        missed = np.exp(identities * np.log1p(-np.minimum(p, 1.0 - 1e-16)))
        return float(weights @ (1.0 - missed))

    def modelled_range(self) -> tuple[float, float]:
        """From the threshold below which FPIR no longer changes (every point at the lowest
        level) to the one above which only the fitted tails remain."""
        return (
            min(self.locations) + self.tail.scores[0],
            max(self.locations) + self.tail.scores[-1],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.tail.to_dict(),
            "locations": list(self.locations),
            "weights": list(self.weights),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ProbeStratum:
        check_keys(data, STRATUM_KEYS, where)
        return cls(
            tail=ScoreTail.from_dict(data, where),
            locations=number_list(data, "locations", where),
            weights=number_list(data, "weights", where),
        )


def false_match_rate(strata: Sequence[ProbeStratum], threshold: float, identities: float) -> float:
    """Predicted FPIR at ``threshold`` against ``identities`` independent identities per probe."""
    return sum(stratum.match_rate(threshold, identities) for stratum in strata)


def fit_probe_strata(matrix: np.ndarray) -> tuple[ProbeStratum, ...]:
    """Locations, strata and their tails from a (non-mated probe x identity) score matrix."""
    probes, identities = matrix.shape
    few = identities < MIN_LOCATION_IDENTITIES
    locations = np.zeros(probes) if few else matrix.mean(axis=1)
    shifted = matrix - locations[:, None]
    order = np.argsort(locations, kind="stable")
    strata = 1 if few else _stratum_count(shifted, order)
    return tuple(
        ProbeStratum(fit_score_tail(shifted[part].ravel()), *_summarise(part, locations))
        for part in np.array_split(order, strata)
    )


def _stratum_count(shifted: np.ndarray, order: np.ndarray) -> int:
    """The number of strata (1 to ``MAX_STRATA``) with the lowest BIC.

    Each candidate models the shifted scores above one common level ``u`` (the top
    ``TAIL_FRACTION`` of all of them): per stratum, the share above ``u`` and the tail of
    the exceedances (3 parameters). Every stratum needs ``MIN_STRATUM_EXCEEDANCES`` above
    ``u``; with less data, fewer strata.
    """
    level = float(np.quantile(shifted, 1.0 - TAIL_FRACTION))
    best, best_bic = 1, math.inf
    for count in range(1, MAX_STRATA + 1):
        log_likelihood = 0.0
        for part in np.array_split(order, count):
            values = shifted[part].ravel()
            excess = values[values > level] - level
            above, total = len(excess), len(values)
            if above < MIN_STRATUM_EXCEEDANCES or above == total:
                return best
            share = above / total
            log_likelihood += above * math.log(share) + (total - above) * math.log1p(-share)
            log_likelihood += fit_exceedances(excess)[2]
        bic = -2.0 * log_likelihood + 3 * count * math.log(shifted.size)
        if bic < best_bic:
            best, best_bic = count, bic
    return best


def _summarise(
    part: np.ndarray, locations: np.ndarray
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """At most ``LOCATIONS_PER_STRATUM`` (location, weight) points for a stratum's probes.

    ``part`` holds the stratum's probes in ascending location. The rare false matches
    come from the probes with the highest locations, so the top half of the points are
    those probes themselves; the rest of the stratum is split into equal-count bins, each
    represented by its middle probe with the bin's share of all probes as weight. (On the
    generated benchmark this changes no threshold's FPIR by more than 0.5%.)
    """
    probes = len(locations)
    if len(part) <= LOCATIONS_PER_STRATUM:
        chosen, weights = list(part), [1.0 / probes] * len(part)
    else:
        kept = LOCATIONS_PER_STRATUM // 2
        bins = np.array_split(part[:-kept], LOCATIONS_PER_STRATUM - kept)
        chosen = [int(group[len(group) // 2]) for group in bins] + list(part[-kept:])
        weights = [len(group) / probes for group in bins] + [1.0 / probes] * kept
    return tuple(float(locations[i]) for i in chosen), tuple(weights)
