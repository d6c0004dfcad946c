"""The survival function of impostor scores: empirical where data exist, fitted beyond.

``p(x) = P(s >= x)`` is kept as a few dozen (score, survival) levels down to the top
``TAIL_FRACTION`` of the scores (interpolated log-linearly). Thresholds for small FPIR in
large galleries lie beyond the observed scores and must be extrapolated, so above the
last level ``u`` the tail is ``p(u + x) = p(u) exp(-(r x + c x^2))`` with ``r, c >= 0``:
Gaussian-type when ``c > 0``, exponential when ``c = 0``. Cosine similarities of
many-dimensional embeddings have Gaussian-like tails; a generalised Pareto tail was tried
first and mis-extrapolated them both ways (its bounded fit promised 4x too little FPIR at
100x beyond the data, its exponential limit 100x too much).

``r`` and ``c`` are fitted by maximum likelihood on the exceedances over ``u``. The
former least-squares fit of the log-survival of the order statistics gave the rarest few
scores as much say as the thousands near ``u``: on i.i.d. Normal scores (1000 x 400, 8
seeds) its thresholds for FPIR 0.1% at 750 identities gave 0.36-1.54x the promise, the
likelihood fit 0.48-1.48x.

``TAIL_FRACTION`` is a trade: with the top 5% those i.i.d. ratios are 0.68-1.32x, but on
the generated benchmark (docs/open_set.md) the tail of generic probes bends down beyond
the top 2% and a 5% fit made thresholds for 0.1% about 1.6x stricter than needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

SURVIVAL_LEVELS = 48
TAIL_FRACTION = 0.02  # the top 2% of the scores shape the extrapolated tail
MIN_TAIL_SAMPLES = 20
_NEWTON_STEPS = 100


class CalibrationError(ValueError):
    """A calibration is malformed, or the data cannot support one."""


@dataclass(frozen=True)
class ScoreTail:
    """``p(x) = P(s >= x)``: empirical levels, then the fitted tail above ``scores[-1]``."""

    scores: tuple[float, ...]  # ascending ...
    survival: tuple[float, ...]  # ... and P(s >= score) at each, non-increasing, in (0, 1]
    rate: float  # r, per unit of score
    curvature: float  # c, per squared unit of score

    def __post_init__(self) -> None:
        scores, survival = np.asarray(self.scores), np.asarray(self.survival)
        if len(scores) < 2 or len(scores) != len(survival):
            raise CalibrationError("survival scores and levels need the same length, at least 2")
        if not (np.isfinite(scores).all() and np.isfinite(survival).all()):
            raise CalibrationError("survival levels must be finite numbers")
        if (np.diff(scores) < 0).any() or (np.diff(survival) > 0).any():
            raise CalibrationError("survival scores must ascend and survival must not increase")
        if not (survival[-1] > 0.0 and survival[0] <= 1.0):
            raise CalibrationError("survival values must lie in (0, 1]")
        rate, curvature = self.rate, self.curvature
        if not (math.isfinite(rate) and math.isfinite(curvature) and rate >= 0 and curvature >= 0):
            raise CalibrationError("tail_rate and tail_curvature must be finite and >= 0")
        if rate == curvature == 0:
            raise CalibrationError("tail_rate and tail_curvature cannot both be 0 (no tail)")

    @cached_property
    def _levels(self) -> tuple[np.ndarray, np.ndarray]:
        # Thresholds are solved by bisection in the service: convert the levels once.
        return np.asarray(self.scores), np.log(np.asarray(self.survival))

    def survival_at(self, x: np.ndarray) -> np.ndarray:
        """``p(x)`` elementwise."""
        scores, log_survival = self._levels
        # Interpolating log-survival linearly in the score matches an exponential-like tail.
        body = np.interp(x, scores, log_survival, left=log_survival[0])
        beyond = np.maximum(x - scores[-1], 0.0)
        tail = log_survival[-1] - (self.rate * beyond + self.curvature * beyond * beyond)
        return np.exp(np.where(x <= scores[-1], body, tail))

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": list(self.scores),
            "survival": list(self.survival),
            "tail_rate": self.rate,
            "tail_curvature": self.curvature,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> ScoreTail:
        """Read the keys of `to_dict` from ``data`` (already key-checked by the caller)."""
        return cls(
            scores=number_list(data, "scores", where),
            survival=number_list(data, "survival", where),
            rate=number(data, "tail_rate", where),
            curvature=number(data, "tail_curvature", where),
        )


def check_keys(data: Any, names: set[str], where: str) -> dict[str, Any]:
    """``data`` as a JSON object with exactly the keys ``names``, else a `CalibrationError`."""
    if not isinstance(data, dict):
        raise CalibrationError(f"{where} must be a JSON object, got {type(data).__name__}")
    missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
    if missing or unknown:
        raise CalibrationError(
            f"{where} keys: missing {missing or 'none'}, unknown {unknown or 'none'}"
        )
    return data


def number(data: dict[str, Any], key: str, where: str) -> float:
    if not is_number(data[key]):
        raise CalibrationError(f"{where} '{key}' must be a number")
    return float(data[key])


def number_list(data: dict[str, Any], key: str, where: str) -> tuple[float, ...]:
    if not isinstance(data[key], list) or not all(map(is_number, data[key])):
        raise CalibrationError(f"{where} '{key}' must be a list of numbers")
    return tuple(float(value) for value in data[key])


def is_number(value: Any) -> bool:
    """A JSON number: int or float, not bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def fit_score_tail(values: np.ndarray) -> ScoreTail:
    """Empirical levels down to the top ``TAIL_FRACTION`` of ``values``; the fitted tail beyond."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))[::-1]  # ordered[k - 1]: k reach it
    count = len(ordered)
    tail_count = min(count - 1, max(MIN_TAIL_SAMPLES, round(TAIL_FRACTION * count)))
    ranks = np.unique(np.geomspace(tail_count, count, SURVIVAL_LEVELS).round().astype(int))
    levels = ordered[ranks - 1][::-1]
    survival = (ranks / count)[::-1]
    levels, keep = np.unique(levels, return_index=True)  # tied scores: keep the largest survival
    survival = survival[keep]
    rate, curvature, _ = fit_exceedances(ordered[: tail_count - 1] - levels[-1])
    return ScoreTail(tuple(map(float, levels)), tuple(map(float, survival)), rate, curvature)


def fit_exceedances(excess: np.ndarray) -> tuple[float, float, float]:
    """``(r, c, log-likelihood)``: the maximum-likelihood tail ``P(X >= x) = e^-(rx + cx^2)``.

    Only positive ``excess`` values are exceedances. The density ``(r + 2cx) e^-(rx + cx^2)``
    has a concave log-likelihood, so the maximum over ``r, c >= 0`` is one of the two
    boundaries (exponential ``c = 0``, Rayleigh ``r = 0``) when the gradient there points
    out of the feasible set (the KKT condition), else the interior stationary point, found
    by Newton's method with backtracking.
    """
    x = excess[excess > 0]
    if len(x) < 2:
        raise CalibrationError(
            "the highest impostor scores are all equal, so their tail cannot be modelled "
            "(collapsed embeddings?)"
        )
    n, sum_x, sum_xx = len(x), float(x.sum()), float(x @ x)

    def log_likelihood(r: float, c: float) -> float:
        return float(np.log(r + 2.0 * c * x).sum()) - r * sum_x - c * sum_xx

    exponential = n / sum_x  # c = 0
    if 2.0 * sum_x / exponential <= sum_xx:
        return exponential, 0.0, log_likelihood(exponential, 0.0)
    rayleigh = n / sum_xx  # r = 0
    if float((1.0 / x).sum()) / (2.0 * rayleigh) <= sum_x:
        return 0.0, rayleigh, log_likelihood(0.0, rayleigh)
    theta = np.array([exponential / 2.0, rayleigh / 2.0])  # strictly inside: r, c > 0
    value = log_likelihood(*theta)
    for _ in range(_NEWTON_STEPS):
        inverse = 1.0 / (theta[0] + 2.0 * theta[1] * x)
        gradient = np.array([inverse.sum() - sum_x, 2.0 * (x * inverse).sum() - sum_xx])
        w = inverse * inverse
        hessian = -np.array(
            [[w.sum(), 2.0 * (x * w).sum()], [2.0 * (x * w).sum(), 4.0 * (x * x * w).sum()]]
        )
        step = np.linalg.solve(hessian, -gradient)
        scale = 1.0
        while scale > 1e-12:
            candidate = theta + scale * step
            if (candidate > 0).all() and log_likelihood(*candidate) >= value:
                break
            scale /= 2.0
        else:
            break
        converged = np.abs(candidate - theta).max() <= 1e-12 * np.abs(theta).max()
        theta, value = candidate, log_likelihood(*candidate)
        if converged:
            break
    return float(theta[0]), float(theta[1]), float(value)
