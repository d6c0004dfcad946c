"""A decision threshold that keeps a promised false-match rate, for any gallery size.

FPIR depends on how many identities a non-mated probe is compared with: every extra
identity is another chance for a high impostor score. So the calibration does not
store one threshold but a model with two parts, fitted on labelled data:

1. **The per-identity impostor tail** ``p(T) = P(s >= T)``, where ``s`` is a non-mated
   probe's score against ONE gallery identity (max over that identity's entries).
   Up to ``tail_start`` it is the empirical survival function, kept as a few dozen
   (score, survival) levels down to the ``MIN_TAIL_SAMPLES``-th highest impostor score.
   Above it the thresholds for small FPIR at large galleries
   lie beyond the observed impostor scores and must be extrapolated: the shape of the
   top ``TAIL_FRACTION`` of the scores is fitted with ``log p(T) = log p(u) - r x - c x^2``
   (``r, c >= 0``) and continued from ``tail_start``, in one of two coordinates, the
   ``tail_form``:

   * ``gaussian``: ``x = T - u``, a Gaussian-type tail (exponential when ``c = 0``);
   * ``bounded``: ``x = log((1 - u) / (1 - T))``, a tail that vanishes at the cosine's
     bound of 1 (a power of the distance to 1, like the cosine of random directions).

   The fit checks how well each form predicts the rarest tenth of the tail from the rest
   of it and keeps ``bounded`` only when it clearly does better (`calibration_fit`).
   A trained embedding's impostor scores can fall off far faster near the top than a
   Gaussian-type fit to the top 5% carries on: on one Market-1501 run that fit promised
   p 13x too high at T = 0.87, so thresholds for small FPIR came out too strict
   (docs/open_set.md); on another the calibration's tail was lighter than the test
   identities', and the faithful bounded form broke the promise worse. A generalised
   Pareto tail with a free endpoint was tried first and mis-extrapolated both ways (its
   bounded fit promised 4x too little FPIR at 100x beyond the data, its exponential
   limit 100x too much).
2. **The size model**. If a probe's scores against different identities were
   independent, ``FPIR_N(T) = 1 - (1 - p(T))^N``. They are not quite: a probe that
   looks generic scores high against everyone. So the exponent is an *effective*
   number of independent identities, ``N_eff(N) = size_scale * N^size_exponent``,
   fitted by comparing observed FPIR on random sub-galleries of the calibration set
   with ``p(T)`` (independence is ``size_scale = size_exponent = 1``).
3. **The entries model**. An identity's score is its best entry's, so an identity with
   more entries draws more chances at a high impostor score: ``p(T)`` holds for the
   calibration's ``entries_per_identity`` (its mean, ``m_cal``). A gallery with ``m``
   entries per identity multiplies the effective count by ``(m / m_cal)^entries_exponent``,
   fitted by sub-sampling each calibration identity's entries (0 when it could not be
   fitted, or for calibrations made before it existed: then entries are not modelled).

``threshold_for(fpir, N, m)`` solves ``p(T) = 1 - (1 - fpir)^(1 / E)`` with
``E = N_eff(N) (m / m_cal)^entries_exponent``. The fit is in `calibration_fit`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TAIL_FORMS = ("gaussian", "bounded")
_NEAR_ONE = 1e-7  # 1 - T floor: the bounded form's coordinate at scores rounded to 1


class CalibrationError(ValueError):
    """A calibration is malformed, or the data cannot support one."""


def tail_coordinate(form: str, start: float, scores: float | np.ndarray) -> np.ndarray:
    """``x`` of the fitted tail above ``start`` (0 at and below it) in the given form."""
    t = np.maximum(np.asarray(scores, dtype=np.float64), start)
    if form == "gaussian":
        return t - start
    return np.log(max(1.0 - start, _NEAR_ONE)) - np.log(np.maximum(1.0 - t, _NEAR_ONE))


@dataclass(frozen=True)
class Calibration:
    """Open-set thresholds and the model that carries them to other gallery sizes.

    ``thresholds`` maps each FPIR target (as a string, e.g. ``"0.01"``) to the score a
    probe's best identity must reach, in a gallery of ``gallery_identities``. For any
    other size use `threshold_for`; to check an operating point, `false_positive_rate`.
    ``counts`` says how much data it rests on (``impostor_scores``, ``nonmated_probes``,
    ``mated_probes``, ``enrolled_identities``, ``size_fit_points``, ``entries_fit_points``;
    cards fitted before every probe was also used against the other identities have
    ``withheld_identities`` too).
    """

    gallery_identities: int
    thresholds: Mapping[str, float]
    survival_scores: tuple[float, ...]  # ascending impostor scores ...
    survival: tuple[float, ...]  # ... and P(s >= score) at each, non-increasing
    tail_start: float  # = survival_scores[-1]; the fitted tail takes over above it
    tail_probability: float  # = survival[-1]
    tail_rate: float  # r, per unit of the tail's coordinate x
    tail_curvature: float  # c, per squared unit of x
    size_scale: float = 1.0
    size_exponent: float = 1.0
    entries_per_identity: float = 1.0  # m_cal: mean entries per enrolled calibration identity
    entries_exponent: float = 0.0  # 0: entries per identity not modelled
    counts: Mapping[str, int] = field(default_factory=dict)
    tail_form: str = "gaussian"  # the coordinate x of the fitted tail (module docstring)
    # Per stated threshold: the FPIR it would be promised at gallery_identities if the
    # calibration's people were resampled (low, high; `calibration_spread`). Empty: unknown.
    fpir_spread: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # The share of people-resampled calibrations whose promise the curve keeps
    # (`calibration_bootstrap`); None: the curve is the plain fit (and older cards).
    confidence: float | None = None

    def __post_init__(self) -> None:
        _check_positive_int("gallery_identities", self.gallery_identities)
        scores, survival = np.asarray(self.survival_scores), np.asarray(self.survival)
        if len(scores) < 2 or len(scores) != len(survival):
            raise CalibrationError("survival_scores and survival need the same length, at least 2")
        if not (np.isfinite(scores).all() and np.isfinite(survival).all()):
            raise CalibrationError("survival levels must be finite numbers")
        if (np.diff(scores) < 0).any() or (np.diff(survival) > 0).any():
            raise CalibrationError("survival_scores must ascend and survival must not increase")
        if not (survival[-1] > 0.0 and survival[0] <= 1.0):
            raise CalibrationError("survival values must lie in (0, 1]")
        if self.tail_start != scores[-1] or self.tail_probability != survival[-1]:
            raise CalibrationError("the tail must start at the last survival level")
        for name in ("size_scale", "size_exponent"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise CalibrationError(f"{name} must be a positive number, got {value!r}")
        if not (math.isfinite(self.entries_per_identity) and self.entries_per_identity >= 1):
            raise CalibrationError("entries_per_identity must be a number >= 1")
        if not (math.isfinite(self.entries_exponent) and 0 <= self.entries_exponent <= 1):
            raise CalibrationError("entries_exponent must be a number in [0, 1]")
        rate, curvature = self.tail_rate, self.tail_curvature
        if not (math.isfinite(rate) and math.isfinite(curvature) and rate >= 0 and curvature >= 0):
            raise CalibrationError("tail_rate and tail_curvature must be finite and >= 0")
        if rate == curvature == 0:
            raise CalibrationError("tail_rate and tail_curvature cannot both be 0 (no tail)")
        if self.tail_form not in TAIL_FORMS:
            raise CalibrationError(f"tail_form must be one of {TAIL_FORMS}, got {self.tail_form!r}")
        for key, value in self.thresholds.items():
            if not 0.0 < _target(key) < 1.0 or not math.isfinite(value):
                raise CalibrationError(f"threshold {key}: {value!r} is not a valid operating point")
        for key, count in self.counts.items():
            _check_count(f"counts.{key}", count)
        if self.confidence is not None and not 0.5 <= self.confidence < 1.0:
            raise CalibrationError(
                f"confidence must be in [0.5, 1) or null, got {self.confidence!r}"
            )
        for key, band in self.fpir_spread.items():
            if key not in self.thresholds:
                raise CalibrationError(f"fpir_spread {key!r} is not a stated threshold")
            if len(band) != 2 or not 0.0 <= band[0] <= band[1] <= 1.0:
                raise CalibrationError(f"fpir_spread {key!r}: {band!r} is not a [low, high] rate")

    def impostor_survival(self, threshold: float | np.ndarray) -> np.ndarray:
        """``p(T)``: the chance one gallery identity scores ``>= T`` against a non-mated probe."""
        t = np.asarray(threshold, dtype=np.float64)
        scores, survival = np.asarray(self.survival_scores), np.asarray(self.survival)
        # Interpolating log-survival linearly in the score matches an exponential-like tail.
        body = np.exp(np.interp(t, scores, np.log(survival), left=np.log(survival[0])))
        x = tail_coordinate(self.tail_form, self.tail_start, t)
        tail = np.exp(-(self.tail_rate * x + self.tail_curvature * x * x))
        return np.where(t <= self.tail_start, body, self.tail_probability * tail)

    def effective_identities(
        self, gallery_identities: int, entries_per_identity: float | None = None
    ) -> float:
        """How many independent identities a gallery of N, with ``entries_per_identity``
        entries each (default: as many as in the calibration), acts like."""
        _check_positive_int("gallery_identities", gallery_identities)
        effective = self.size_scale * gallery_identities**self.size_exponent
        if entries_per_identity is None or self.entries_exponent == 0:
            return effective
        if not (math.isfinite(entries_per_identity) and entries_per_identity >= 1):
            raise CalibrationError(
                f"entries_per_identity must be a number >= 1, got {entries_per_identity!r}"
            )
        ratio = entries_per_identity / self.entries_per_identity
        return effective * ratio**self.entries_exponent

    def false_positive_rate(
        self, threshold: float, gallery_identities: int, entries_per_identity: float | None = None
    ) -> float:
        """Predicted FPIR at ``threshold`` in a gallery of ``gallery_identities`` identities
        holding ``entries_per_identity`` entries each on average."""
        p = float(self.impostor_survival(threshold))
        exponent = self.effective_identities(gallery_identities, entries_per_identity)
        return float(-np.expm1(exponent * np.log1p(-min(p, 1.0 - 1e-16))))

    def threshold_for(
        self, fpir: float, gallery_identities: int, entries_per_identity: float | None = None
    ) -> float:
        """The lowest threshold whose predicted FPIR is ``fpir`` at this gallery size.

        A value above 1 (the largest cosine similarity) means no threshold can keep the
        promise at this size: every probe would be decided ``unknown``. Passing the mean
        ``entries_per_identity`` for a gallery whose identities hold different numbers of
        entries errs towards fewer false matches (the entries term is concave for an
        exponent below 1).
        """
        if isinstance(fpir, bool) or not 0.0 < float(fpir) < 1.0:
            raise CalibrationError(f"fpir must be in (0, 1), got {fpir!r}")
        exponent = self.effective_identities(gallery_identities, entries_per_identity)
        target = float(-np.expm1(np.log1p(-fpir) / exponent))  # 1 - (1 - f)^(1/N_eff)
        return self.score_at_survival(target)

    def score_at_survival(self, p: float) -> float:
        """The threshold ``T`` with ``p(T) = p``: one identity's chance of reaching it."""
        scores, survival = np.asarray(self.survival_scores), np.asarray(self.survival)
        if p >= survival[0]:
            return float(scores[0])
        if p >= self.tail_probability:
            # np.interp needs ascending x: walk the levels from the rare end.
            return float(np.interp(np.log(p), np.log(survival[::-1]), scores[::-1]))
        # Solve c x^2 + r x = log(p_u / p) for x >= 0 (written to stay exact when c = 0).
        decay = math.log(self.tail_probability / p)
        rate, curvature = self.tail_rate, self.tail_curvature
        x = 2.0 * decay / (rate + math.sqrt(rate * rate + 4.0 * curvature * decay))
        if self.tail_form == "gaussian":
            return self.tail_start + x
        return 1.0 - (1.0 - self.tail_start) * math.exp(-x)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gallery_identities": self.gallery_identities,
            "thresholds": dict(self.thresholds),
            "survival_scores": list(self.survival_scores),
            "survival": list(self.survival),
            "tail_start": self.tail_start,
            "tail_probability": self.tail_probability,
            "tail_rate": self.tail_rate,
            "tail_curvature": self.tail_curvature,
            "size_scale": self.size_scale,
            "size_exponent": self.size_exponent,
            "entries_per_identity": self.entries_per_identity,
            "entries_exponent": self.entries_exponent,
            "counts": dict(self.counts),
            "tail_form": self.tail_form,
            "fpir_spread": {key: list(band) for key, band in self.fpir_spread.items()},
            "confidence": self.confidence,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """Validate JSON data; any problem is a `CalibrationError` naming the key.

        Calibrations written before the entries model lack its two keys: they load with
        entries not modelled, as they were fitted; those written before the tail forms
        lack ``tail_form`` and load as the Gaussian-type tail they were fitted with; those
        written before the bootstrap lack ``fpir_spread`` and ``confidence`` and load as the
        plain fits they are."""
        if not isinstance(data, dict):
            raise CalibrationError(f"calibration must be a JSON object, got {type(data).__name__}")
        names = {
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
            "entries_per_identity",
            "entries_exponent",
            "counts",
            "tail_form",
            "fpir_spread",
            "confidence",
        }
        optional = {
            "entries_per_identity",
            "entries_exponent",
            "tail_form",
            "fpir_spread",
            "confidence",
        }
        missing = sorted(names - optional - set(data))
        unknown = sorted(set(data) - names)
        if missing or unknown:
            raise CalibrationError(
                f"calibration keys: missing {missing or 'none'}, unknown {unknown or 'none'}"
            )
        for key in ("thresholds", "counts"):
            if not isinstance(data[key], dict):
                raise CalibrationError(f"calibration '{key}' must be a JSON object")
        for key in ("survival_scores", "survival"):
            if not isinstance(data[key], list) or not all(map(_is_number, data[key])):
                raise CalibrationError(f"calibration '{key}' must be a list of numbers")
        for key in ("tail_start", "tail_probability", "tail_rate", "tail_curvature"):
            if not _is_number(data[key]):
                raise CalibrationError(f"calibration '{key}' must be a number")
        if not isinstance(data.get("tail_form", "gaussian"), str):
            raise CalibrationError("calibration 'tail_form' must be a string")
        numbers = optional - {"tail_form", "fpir_spread", "confidence"}
        for key in ("size_scale", "size_exponent", *numbers.intersection(data)):
            if not _is_number(data[key]):
                raise CalibrationError(f"calibration '{key}' must be a number")
        if not all(map(_is_number, data["thresholds"].values())):
            raise CalibrationError("calibration 'thresholds' values must be numbers")
        spread = data.get("fpir_spread", {})
        if not isinstance(spread, dict) or not all(
            isinstance(band, list) and all(map(_is_number, band)) for band in spread.values()
        ):
            raise CalibrationError("calibration 'fpir_spread' must map thresholds to [low, high]")
        confidence = data.get("confidence")
        if confidence is not None and not _is_number(confidence):
            raise CalibrationError("calibration 'confidence' must be a number or null")
        return cls(
            gallery_identities=data["gallery_identities"],
            thresholds={str(k): float(v) for k, v in data["thresholds"].items()},
            survival_scores=tuple(float(v) for v in data["survival_scores"]),
            survival=tuple(float(v) for v in data["survival"]),
            tail_start=float(data["tail_start"]),
            tail_probability=float(data["tail_probability"]),
            tail_rate=float(data["tail_rate"]),
            tail_curvature=float(data["tail_curvature"]),
            size_scale=float(data["size_scale"]),
            size_exponent=float(data["size_exponent"]),
            entries_per_identity=float(data.get("entries_per_identity", 1.0)),
            entries_exponent=float(data.get("entries_exponent", 0.0)),
            counts=dict(data["counts"]),
            tail_form=data.get("tail_form", "gaussian"),
            fpir_spread={str(k): tuple(float(v) for v in band) for k, band in spread.items()},
            confidence=None if confidence is None else float(confidence),
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
