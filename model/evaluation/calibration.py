"""A decision threshold that keeps a promised false-match rate, for any gallery size.

FPIR depends on how many identities a non-mated probe is compared with: every extra
identity is another chance for a high impostor score. So a calibration does not store
one threshold but a model fitted on labelled data, a non-mated probe x identity score
matrix: the probes' own impostor tails (`model.evaluation.probe_tails`: FPIR at size N is
the mean over probes of ``1 - (1 - p_i(T))^N``), each an empirical body with a fitted
Gaussian-type tail (`model.evaluation.score_tail`).

``threshold_for(fpir, N)`` solves ``FPIR_N(T) = fpir`` by bisection (FPIR falls as T
rises); ``false_positive_rate(T, N)`` evaluates it.

Calibrations written before the probe model (model cards in the wild, stored site
calibrations) had one pooled tail ``p(T)`` and an effective size
``N_eff = size_scale * N^size_exponent`` instead of N. `Calibration.from_dict` still reads
them, as one stratum with a single probe at location 0 and that ``N_eff``: they give the
thresholds they always gave. Every new fit has ``size_scale = size_exponent = 1``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.evaluation.open_set import FPIR_TARGETS
from model.evaluation.probe_tails import ProbeStratum, false_match_rate, fit_probe_strata
from model.evaluation.score_tail import (
    CalibrationError,
    ScoreTail,
    check_keys,
    is_number,
    number,
    number_list,
)

__all__ = ["Calibration", "CalibrationError", "fit_calibration"]

MIN_IMPOSTOR_SCORES = 50
KEYS = {"gallery_identities", "thresholds", "probe_strata", "size_scale", "size_exponent", "counts"}
# The format before the probe model: one pooled tail and an effective size.
LEGACY_KEYS = {
    "gallery_identities",
    "thresholds",
    "survival_scores",
    "survival",
    "tail_start",
    "tail_probability",
    "tail_rate",
    "tail_curvature",
    "size_scale",
    "size_exponent",
    "counts",
}


@dataclass(frozen=True)
class Calibration:
    """Open-set thresholds and the model that carries them to other gallery sizes.

    ``thresholds`` maps each FPIR target (as a string, e.g. ``"0.01"``) to the score a
    probe's best identity must reach, in a gallery of ``gallery_identities``. For any
    other size use `threshold_for`; to check an operating point, `false_positive_rate`.
    ``counts`` says how much data it rests on (``impostor_scores``, ``nonmated_probes``,
    ``mated_probes``, ``enrolled_identities``, ``withheld_identities``, ``probe_strata``).
    ``size_scale`` and ``size_exponent`` make a gallery of N act like
    ``size_scale * N^size_exponent`` independent identities per probe; only calibrations
    written before the probe model have other values than 1.
    """

    gallery_identities: int
    thresholds: Mapping[str, float]
    probe_strata: tuple[ProbeStratum, ...]
    size_scale: float = 1.0
    size_exponent: float = 1.0
    counts: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_positive_int("gallery_identities", self.gallery_identities)
        if not self.probe_strata:
            raise CalibrationError("a calibration needs at least one probe stratum")
        total = sum(sum(stratum.weights) for stratum in self.probe_strata)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise CalibrationError(f"probe weights must sum to 1, got {total!r}")
        for name in ("size_scale", "size_exponent"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise CalibrationError(f"{name} must be a positive number, got {value!r}")
        for key, value in self.thresholds.items():
            if not 0.0 < _target(key) < 1.0 or not math.isfinite(value):
                raise CalibrationError(f"threshold {key}: {value!r} is not a valid operating point")
        for key, count in self.counts.items():
            _check_count(f"counts.{key}", count)

    def false_positive_rate(self, threshold: float, gallery_identities: int) -> float:
        """Predicted FPIR at ``threshold`` in a gallery of ``gallery_identities`` identities."""
        identities = self._identities(gallery_identities)
        return false_match_rate(self.probe_strata, threshold, identities)

    def threshold_for(self, fpir: float, gallery_identities: int) -> float:
        """The lowest threshold whose predicted FPIR is at most ``fpir`` at this gallery size.

        A value above 1 (the largest cosine similarity) means no threshold can keep the
        promise at this size: every probe would be decided ``unknown``.
        """
        if isinstance(fpir, bool) or not 0.0 < float(fpir) < 1.0:
            raise CalibrationError(f"fpir must be in (0, 1), got {fpir!r}")
        identities = self._identities(gallery_identities)

        def rate(threshold: float) -> float:
            return false_match_rate(self.probe_strata, threshold, identities)

        low = min(stratum.modelled_range()[0] for stratum in self.probe_strata)
        if rate(low) <= fpir:
            return low  # below the lowest modelled score FPIR no longer changes
        high = max(stratum.modelled_range()[1] for stratum in self.probe_strata)
        step = 1.0
        while rate(high) > fpir:  # the fitted tails fall to 0, so this ends
            low, high, step = high, high + step, 2.0 * step
        while True:  # FPIR falls as the threshold rises: bisect to the last bit
            middle = low + (high - low) / 2.0
            if middle in (low, high):
                return high
            if rate(middle) > fpir:
                low = middle
            else:
                high = middle

    def _identities(self, gallery_identities: int) -> float:
        _check_positive_int("gallery_identities", gallery_identities)
        return self.size_scale * gallery_identities**self.size_exponent

    def to_dict(self) -> dict[str, Any]:
        return {
            "gallery_identities": self.gallery_identities,
            "thresholds": dict(self.thresholds),
            "probe_strata": [stratum.to_dict() for stratum in self.probe_strata],
            "size_scale": self.size_scale,
            "size_exponent": self.size_exponent,
            "counts": dict(self.counts),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """Validate JSON data, in this format or the one before the probe model.

        Any problem is a `CalibrationError` naming the key.
        """
        if not isinstance(data, dict):
            raise CalibrationError(f"calibration must be a JSON object, got {type(data).__name__}")
        legacy = "probe_strata" not in data and "survival_scores" in data
        check_keys(data, LEGACY_KEYS if legacy else KEYS, "calibration")
        for key in ("thresholds", "counts"):
            if not isinstance(data[key], dict):
                raise CalibrationError(f"calibration '{key}' must be a JSON object")
        if not all(map(is_number, data["thresholds"].values())):
            raise CalibrationError("calibration 'thresholds' values must be numbers")
        if legacy:
            strata = (_legacy_stratum(data),)
        elif isinstance(data["probe_strata"], list):
            strata = tuple(
                ProbeStratum.from_dict(stratum, f"calibration 'probe_strata'[{index}]")
                for index, stratum in enumerate(data["probe_strata"])
            )
        else:
            raise CalibrationError("calibration 'probe_strata' must be a list")
        return cls(
            gallery_identities=data["gallery_identities"],
            thresholds={str(k): float(v) for k, v in data["thresholds"].items()},
            probe_strata=strata,
            size_scale=number(data, "size_scale", "calibration"),
            size_exponent=number(data, "size_exponent", "calibration"),
            counts=dict(data["counts"]),
        )


def _legacy_stratum(data: dict[str, Any]) -> ProbeStratum:
    """The pooled tail of a calibration written before the probe model, as one stratum."""
    scores = number_list(data, "survival_scores", "calibration")
    survival = number_list(data, "survival", "calibration")
    tail_start = number(data, "tail_start", "calibration")
    tail_probability = number(data, "tail_probability", "calibration")
    tail = ScoreTail(
        scores=scores,
        survival=survival,
        rate=number(data, "tail_rate", "calibration"),
        curvature=number(data, "tail_curvature", "calibration"),
    )
    if tail_start != scores[-1] or tail_probability != survival[-1]:
        raise CalibrationError("the tail must start at the last survival level")
    return ProbeStratum(tail=tail, locations=(0.0,), weights=(1.0,))


def _target(key: str) -> float:
    try:
        return float(key)
    except ValueError:
        raise CalibrationError(f"threshold key {key!r} is not an FPIR such as '0.01'") from None


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CalibrationError(f"{name} must be a positive integer, got {value!r}")


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CalibrationError(f"{name} must be a count (integer >= 0), got {value!r}")


def fit_calibration(
    nonmated_scores: np.ndarray,
    *,
    gallery_identities: int | None = None,
    targets: tuple[float, ...] = FPIR_TARGETS,
    mated_probes: int = 0,
    withheld_identities: int = 0,
) -> Calibration:
    """Fit the probe model on a (non-mated probe x enrolled identity) score matrix.

    ``gallery_identities`` is the size the stated ``thresholds`` are for (default: the
    matrix's identity count); the other counts are recorded for provenance.
    """
    matrix = np.asarray(nonmated_scores, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise CalibrationError(
            f"need a non-empty (non-mated probes, identities) score matrix, got {matrix.shape}"
        )
    if not np.isfinite(matrix).all():
        raise CalibrationError("impostor scores must be finite")
    if matrix.size < MIN_IMPOSTOR_SCORES:
        raise CalibrationError(
            f"only {matrix.size} impostor scores ({matrix.shape[0]} non-mated probes x "
            f"{matrix.shape[1]} identities); a calibration needs at least {MIN_IMPOSTOR_SCORES}"
        )
    probes, identities = matrix.shape
    strata = fit_probe_strata(matrix)
    partial = Calibration(
        gallery_identities=gallery_identities or identities,
        thresholds={},
        probe_strata=strata,
        counts={
            "impostor_scores": int(matrix.size),
            "nonmated_probes": probes,
            "mated_probes": mated_probes,
            "enrolled_identities": identities,
            "withheld_identities": withheld_identities,
            "probe_strata": len(strata),
        },
    )
    thresholds = {
        str(target): partial.threshold_for(target, partial.gallery_identities) for target in targets
    }
    return dataclasses.replace(partial, thresholds=thresholds)
