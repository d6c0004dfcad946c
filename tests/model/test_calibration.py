import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from model.evaluation.calibration import Calibration, CalibrationError, fit_calibration
from model.evaluation.labelled_calibration import calibrate_labelled_set, gallery_probe_split
from model.evaluation.probe_tails import LOCATIONS_PER_STRATUM
from model.evaluation.score_tail import fit_exceedances

SD = 0.1
TARGETS = (0.1, 0.01, 0.001)
SIZES = (50, 200, 750)
# Written by the calibration code before the probe model (commit f6f724c), as cards hold it.
LEGACY_CARD = Path(__file__).parent / "data" / "calibration_before_probe_model.json"


def _normal_survival(threshold: float, shift: float | np.ndarray = 0.0) -> np.ndarray:
    return 0.5 * np.vectorize(math.erfc)((threshold - np.asarray(shift)) / (SD * math.sqrt(2.0)))


def _true_fpir(threshold: float, gallery: int, shifts: float | np.ndarray = 0.0) -> float:
    """Exact FPIR when probe i's scores are i.i.d. Normal(shift_i, SD): mean of 1 - (1 - p_i)^N."""
    return float(np.mean(1.0 - (1.0 - _normal_survival(threshold, shifts)) ** gallery))


@pytest.fixture(scope="module")
def independent() -> Calibration:
    """Per-identity impostor scores i.i.d. Normal(0, 0.1): the true FPIR is known exactly."""
    rng = np.random.default_rng(0)
    return fit_calibration(rng.normal(0.0, SD, size=(1000, 400)))


@pytest.mark.parametrize("gallery", SIZES)
@pytest.mark.parametrize("fpir", TARGETS)
def test_promised_fpir_holds_within_a_factor_of_two(
    independent: Calibration, gallery: int, fpir: float
) -> None:
    threshold = independent.threshold_for(fpir, gallery)
    assert 0.5 <= _true_fpir(threshold, gallery) / fpir <= 2.0


def test_independent_scores_keep_one_stratum(independent: Calibration) -> None:
    # Splitting probes that do not differ would only cost each tail fit its samples.
    assert independent.counts["probe_strata"] == len(independent.probe_strata) == 1
    assert (independent.size_scale, independent.size_exponent) == (1.0, 1.0)


def _generic_offsets(rng: np.random.Generator, probes: int) -> np.ndarray:
    """One probe in ten looks "generic": it scores 0.2 higher against every identity."""
    return np.where(rng.random(probes) < 0.1, 0.2, 0.0)


def test_the_promise_holds_when_a_few_probes_score_high_against_everyone() -> None:
    # The rare false matches all come from the generic tenth, so how FPIR grows with the
    # gallery depends on the threshold. The former model (one pooled tail and an effective
    # size) gave 2.3-3.3x the promised FPIR at 1% and 0.1% here.
    rng = np.random.default_rng(0)
    scores = rng.normal(0.0, SD, size=(1000, 400)) + _generic_offsets(rng, 1000)[:, None]
    calibration = fit_calibration(scores)
    population = _generic_offsets(np.random.default_rng(99), 100_000)
    for gallery in SIZES:
        for fpir in TARGETS:
            true_fpir = _true_fpir(calibration.threshold_for(fpir, gallery), gallery, population)
            assert 0.5 <= true_fpir / fpir <= 2.0, (gallery, fpir)


def test_the_promise_holds_when_every_probe_has_its_own_offset() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(0.0, SD, size=(1000, 400)) + rng.normal(0.0, 0.05, size=(1000, 1))
    calibration = fit_calibration(scores)
    population = np.random.default_rng(2).normal(0.0, 0.05, size=20_000)
    for gallery in SIZES:
        for fpir in TARGETS:
            true_fpir = _true_fpir(calibration.threshold_for(fpir, gallery), gallery, population)
            assert 0.5 <= true_fpir / fpir <= 2.0, (gallery, fpir)


def test_probes_whose_tails_differ_get_strata_of_their_own() -> None:
    # Generic probes (higher mean) with a narrower spread, as on the generated benchmark.
    rng = np.random.default_rng(3)
    means = rng.uniform(0.0, 0.4, size=800)
    spreads = 0.12 - 0.15 * means
    scores = means[:, None] + spreads[:, None] * rng.normal(size=(800, 300))
    calibration = fit_calibration(scores)
    strata = calibration.probe_strata
    assert calibration.counts["probe_strata"] == len(strata) > 1
    widths = [s.tail.scores[-1] - s.tail.scores[len(s.tail.scores) // 2] for s in strata]
    assert widths == sorted(widths, reverse=True)  # strata in ascending location
    locations = np.concatenate([s.locations for s in strata])
    assert locations.max() == pytest.approx(scores.mean(axis=1).max())
    assert all(len(s.locations) <= LOCATIONS_PER_STRATUM for s in strata)
    assert sum(sum(s.weights) for s in strata) == pytest.approx(1.0)


def test_threshold_and_false_positive_rate_are_inverses(independent: Calibration) -> None:
    for gallery in (1, 37, 5000):
        for fpir in (0.2, 0.01, 1e-5):
            threshold = independent.threshold_for(fpir, gallery)
            assert independent.false_positive_rate(threshold, gallery) == pytest.approx(
                fpir, rel=1e-6
            )
    # A bigger gallery needs a higher threshold for the same promise.
    assert independent.threshold_for(0.01, 750) > independent.threshold_for(0.01, 50)


def test_stated_thresholds_are_for_the_stated_size(independent: Calibration) -> None:
    assert independent.gallery_identities == 400
    assert set(independent.thresholds) == {"0.1", "0.01", "0.001"}
    assert independent.thresholds["0.01"] == independent.threshold_for(0.01, 400)
    stated = fit_calibration(np.random.default_rng(3).normal(size=(30, 20)), gallery_identities=99)
    assert stated.thresholds["0.1"] == stated.threshold_for(0.1, 99)


def test_round_trips_through_json(independent: Calibration) -> None:
    again = Calibration.from_dict(json.loads(json.dumps(independent.to_dict())))
    assert again == independent
    assert again.threshold_for(0.001, 123) == independent.threshold_for(0.001, 123)


def test_a_calibration_written_before_the_probe_model_keeps_its_thresholds() -> None:
    data = json.loads(LEGACY_CARD.read_text())
    legacy = Calibration.from_dict(data)
    assert (legacy.size_scale, legacy.size_exponent) == (data["size_scale"], data["size_exponent"])
    for key, threshold in data["thresholds"].items():
        assert legacy.threshold_for(float(key), 500) == pytest.approx(threshold, abs=1e-9)
    # Written again, it is in the current format and still means the same.
    rewritten = legacy.to_dict()
    assert "probe_strata" in rewritten and "survival_scores" not in rewritten
    again = Calibration.from_dict(json.loads(json.dumps(rewritten)))
    assert again.threshold_for(0.001, 77) == legacy.threshold_for(0.001, 77)


def test_a_legacy_calibration_uses_its_effective_size() -> None:
    # One identity outscores T with chance 0.5 e^(-10 T); a gallery of N acts like 2 sqrt(N).
    data = {
        "gallery_identities": 1,
        "thresholds": {},
        "survival_scores": [-1.0, 0.0],
        "survival": [1.0, 0.5],
        "tail_start": 0.0,
        "tail_probability": 0.5,
        "tail_rate": 10.0,
        "tail_curvature": 0.0,
        "size_scale": 2.0,
        "size_exponent": 0.5,
        "counts": {"size_fit_points": 12},
    }
    legacy = Calibration.from_dict(data)
    identities = 2.0 * math.sqrt(400)
    expected = math.log(0.5 / (1.0 - 0.99 ** (1.0 / identities))) / 10.0
    assert legacy.threshold_for(0.01, 400) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tail_start": 0.3}, "the tail must start at the last survival level"),
        ({"tail_start": "high"}, "'tail_start' must be a number"),
        ({"survival": [1.0, 0.5, 0.7]}, "must not increase"),
        ({"tail_rate": -1.0}, "tail_rate"),
        ({"size_exponent": 0.0}, "size_exponent"),
        ({"extra": 1}, "unknown \\['extra'\\]"),
    ],
)
def test_invalid_legacy_calibrations_are_refused(change: dict[str, object], message: str) -> None:
    data = {**json.loads(LEGACY_CARD.read_text()), **change}
    if "survival" in change:
        data["survival_scores"] = [0.1, 0.2, 0.3]
        data["tail_start"], data["tail_probability"] = 0.3, 0.7
    with pytest.raises(CalibrationError, match=message):
        Calibration.from_dict(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gallery_identities": 0}, "gallery_identities"),
        ({"gallery_identities": True}, "gallery_identities"),
        ({"size_exponent": 0.0}, "size_exponent"),
        ({"size_scale": "big"}, "'size_scale' must be a number"),
        ({"thresholds": {"often": 0.3}}, "is not an FPIR"),
        ({"thresholds": {"1.5": 0.3}}, "not a valid operating point"),
        ({"thresholds": {"0.1": "high"}}, "values must be numbers"),
        ({"counts": {"nonmated_probes": -1}}, "counts.nonmated_probes"),
        ({"probe_strata": []}, "at least one probe stratum"),
        ({"probe_strata": {"scores": []}}, "must be a list"),
    ],
)
def test_invalid_calibrations_are_refused(
    independent: Calibration, change: dict[str, object], message: str
) -> None:
    with pytest.raises(CalibrationError, match=message):
        Calibration.from_dict({**independent.to_dict(), **change})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"survival": [1.0, 0.5, 0.7], "scores": [0.1, 0.2, 0.3]}, "must not increase"),
        ({"survival": [0.5, 0.0], "scores": [0.1, 0.2]}, "must lie in \\(0, 1\\]"),
        ({"tail_rate": -1.0}, "tail_rate"),
        ({"tail_rate": 0.0, "tail_curvature": 0.0}, "cannot both be 0"),
        ({"locations": []}, "same length"),
        ({"locations": [0.0], "weights": [-1.0]}, "weights must be positive"),
        ({"locations": [0.0], "weights": [0.5]}, "weights must sum to 1"),
        ({"locations": ["high"]}, "'locations' must be a list of numbers"),
        ({"scales": [1.0]}, "unknown \\['scales'\\]"),
    ],
)
def test_invalid_probe_strata_are_refused(
    independent: Calibration, change: dict[str, object], message: str
) -> None:
    data = independent.to_dict()
    data["probe_strata"] = [{**data["probe_strata"][0], **change}]
    with pytest.raises(CalibrationError, match=message):
        Calibration.from_dict(data)


def test_missing_keys_are_refused(independent: Calibration) -> None:
    data = independent.to_dict()
    del data["size_scale"]
    with pytest.raises(CalibrationError, match="missing \\['size_scale'\\]"):
        Calibration.from_dict(data)
    stratum = independent.to_dict()
    del stratum["probe_strata"][0]["weights"]
    missing = "'probe_strata'\\[0\\] keys: missing \\['weights'\\]"
    with pytest.raises(CalibrationError, match=missing):
        Calibration.from_dict(stratum)
    with pytest.raises(CalibrationError, match="JSON object"):
        Calibration.from_dict([1, 2])


def test_bad_requests_to_a_calibration_are_errors(independent: Calibration) -> None:
    with pytest.raises(CalibrationError, match="fpir"):
        independent.threshold_for(0.0, 10)
    with pytest.raises(CalibrationError, match="gallery_identities"):
        independent.threshold_for(0.01, 0)
    with pytest.raises(CalibrationError, match="gallery_identities"):
        independent.false_positive_rate(0.3, -5)


def test_too_little_or_degenerate_data_cannot_be_calibrated() -> None:
    with pytest.raises(CalibrationError, match="at least 50"):
        fit_calibration(np.zeros((5, 4)) + np.arange(4))
    with pytest.raises(CalibrationError, match="all equal"):
        fit_calibration(np.full((20, 10), 0.3))
    with pytest.raises(CalibrationError, match="finite"):
        fit_calibration(np.full((20, 10), np.nan))
    with pytest.raises(CalibrationError, match="non-empty"):
        fit_calibration(np.zeros((0, 3)))


def test_few_identities_give_every_probe_the_same_location() -> None:
    # A mean over one identity (or a handful) says nothing about the probe.
    calibration = fit_calibration(np.random.default_rng(4).normal(size=(200, 1)))
    assert calibration.counts["probe_strata"] == 1
    assert set(calibration.probe_strata[0].locations) == {0.0}
    assert calibration.gallery_identities == 1


@pytest.mark.parametrize(("rate", "curvature"), [(20.0, 0.0), (0.0, 50.0), (8.0, 40.0)])
def test_the_tail_fit_recovers_known_tails(rate: float, curvature: float) -> None:
    # Draw X with P(X >= x) = exp(-(r x + c x^2)) by inverting it at uniform levels.
    e = -np.log(np.random.default_rng(5).random(20_000))
    x = 2.0 * e / (rate + np.sqrt(rate * rate + 4.0 * curvature * e))
    fitted_rate, fitted_curvature, _ = fit_exceedances(x)
    assert fitted_rate == pytest.approx(rate, abs=1.0)
    assert fitted_curvature == pytest.approx(curvature, abs=4.0)


def test_every_enrolled_identity_keeps_a_gallery_image() -> None:
    pids = np.array([1, 1, 1, 1, 2, 2, 3, 4, 4, 4])
    gallery, probes = gallery_probe_split(pids, np.array([4]), gallery_fraction=0.5, seed=0)
    assert sorted(set(pids[gallery])) == [1, 2, 3]
    assert np.intersect1d(gallery, probes).size == 0
    assert len(gallery) + len(probes) == len(pids)
    assert set(pids[probes]) == {1, 2, 4}  # identity 3's only image is its gallery entry


def test_labelled_set_calibration_counts_what_it_used() -> None:
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(40, 32))
    pids = np.repeat(np.arange(1, 41), 6)
    features = centres[pids - 1] + rng.normal(scale=0.8, size=(len(pids), 32))
    calibration = calibrate_labelled_set(features.astype(np.float32), pids, seed=1)
    counts = calibration.counts
    assert counts["withheld_identities"] == 20 and counts["enrolled_identities"] == 20
    assert counts["nonmated_probes"] == 120 and counts["mated_probes"] == 60
    assert counts["impostor_scores"] == 120 * 20
    assert calibration.gallery_identities == 20
    assert dataclasses.replace(calibration) == calibration
    with pytest.raises(CalibrationError, match="at least 2 identities"):
        calibrate_labelled_set(features[:6], pids[:6])
