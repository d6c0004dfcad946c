import dataclasses
import json
import math

import numpy as np
import pytest

from model.evaluation.calibration import Calibration, CalibrationError
from model.evaluation.calibration_fit import fit_calibration
from model.evaluation.labelled_calibration import calibrate_labelled_set, gallery_probe_split

SD = 0.1


def _normal_survival(threshold: float, shift: float = 0.0) -> float:
    return 0.5 * math.erfc((threshold - shift) / (SD * math.sqrt(2.0)))


@pytest.fixture(scope="module")
def independent() -> Calibration:
    """Per-identity impostor scores i.i.d. Normal(0, 0.1): the true FPIR is known exactly.
    The plain fit (no confidence envelope): these tests are about the fitted model."""
    rng = np.random.default_rng(0)
    return fit_calibration(rng.normal(0.0, SD, size=(1000, 400)), confidence=None)


@pytest.mark.parametrize("gallery", [50, 200, 750])
@pytest.mark.parametrize("fpir", [0.1, 0.01, 0.001])
def test_promised_fpir_holds_within_a_factor_of_two(
    independent: Calibration, gallery: int, fpir: float
) -> None:
    threshold = independent.threshold_for(fpir, gallery)
    true_fpir = 1.0 - (1.0 - _normal_survival(threshold)) ** gallery
    assert 0.5 <= true_fpir / fpir <= 2.0


def test_independent_scores_fit_an_effective_size_close_to_the_real_one(
    independent: Calibration,
) -> None:
    assert independent.counts["size_fit_points"] > 10
    assert independent.effective_identities(750) == pytest.approx(750, rel=0.2)


def test_correlated_scores_are_modelled_by_a_smaller_effective_size() -> None:
    # A "generic-looking" probe scores higher against everyone: a per-probe offset.
    rng = np.random.default_rng(1)
    scores = rng.normal(0.0, SD, size=(1000, 400)) + rng.normal(0.0, 0.05, size=(1000, 1))
    calibration = fit_calibration(scores, confidence=None)
    assert calibration.size_exponent < 0.95
    offsets = np.random.default_rng(2).normal(0.0, 0.05, size=4000)
    for gallery in (50, 200, 750):
        for fpir in (0.1, 0.01):
            threshold = calibration.threshold_for(fpir, gallery)
            true_fpir = np.mean(
                [1.0 - (1.0 - _normal_survival(threshold, o)) ** gallery for o in offsets]
            )
            assert 0.5 <= true_fpir / fpir <= 2.0, (gallery, fpir)


COSINE_DIM = 16


def _cosine_survival() -> tuple[np.ndarray, np.ndarray]:
    """P(s >= t) for the cosine of two random directions in ``COSINE_DIM`` dimensions, on a
    grid: density proportional to (1 - s^2)^((d - 3) / 2), integrated numerically."""
    grid = np.linspace(-1.0, 1.0, 2_000_001)
    density = np.clip(1.0 - grid * grid, 0.0, None) ** ((COSINE_DIM - 3) / 2)
    survival = np.cumsum(density[::-1])[::-1]
    return grid, survival / survival[0]


@pytest.fixture(scope="module")
def bounded() -> tuple[Calibration, np.ndarray, np.ndarray]:
    """Impostor scores with a tail that vanishes at the bound of 1, far faster than a
    Gaussian's: cosines of random 16-d directions, (1 + s) / 2 ~ Beta(7.5, 7.5)."""
    half = (COSINE_DIM - 1) / 2
    scores = 2.0 * np.random.default_rng(3).beta(half, half, size=(1000, 400)) - 1.0
    return (fit_calibration(scores, confidence=None), *_cosine_survival())


@pytest.mark.parametrize("gallery", [50, 200, 750])
@pytest.mark.parametrize("fpir", [0.1, 0.01, 0.001])
def test_a_tail_bounded_at_one_keeps_its_promise_beyond_the_data(
    bounded: tuple[Calibration, np.ndarray, np.ndarray], gallery: int, fpir: float
) -> None:
    """At 750 identities and 0.1% the threshold needs p = 1.3e-6, half the rarest of the
    400,000 scores. The Gaussian-type form alone put its threshold where the true p is
    50x smaller than promised (true FPIR 0.02x the target), throwing recall away."""
    calibration, grid, survival = bounded
    assert calibration.tail_form == "bounded"
    threshold = calibration.threshold_for(fpir, gallery)
    true_fpir = 1.0 - (1.0 - float(np.interp(threshold, grid, survival))) ** gallery
    assert 0.5 <= true_fpir / fpir <= 2.0


def test_gaussian_scores_keep_the_gaussian_form(independent: Calibration) -> None:
    assert independent.tail_form == "gaussian"


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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gallery_identities": 0}, "gallery_identities"),
        ({"gallery_identities": True}, "gallery_identities"),
        ({"survival": [1.0, 0.5, 0.7]}, "must not increase"),
        ({"tail_rate": -1.0}, "tail_rate"),
        ({"size_exponent": 0.0}, "size_exponent"),
        ({"thresholds": {"often": 0.3}}, "is not an FPIR"),
        ({"thresholds": {"1.5": 0.3}}, "not a valid operating point"),
        ({"counts": {"nonmated_probes": -1}}, "counts.nonmated_probes"),
        ({"tail_start": "high"}, "tail_start"),
        ({"tail_form": "pareto"}, "tail_form"),
        ({"tail_form": 1}, "tail_form"),
    ],
)
def test_invalid_calibrations_are_refused(
    independent: Calibration, change: dict[str, object], message: str
) -> None:
    data = {**independent.to_dict(), **change}
    if "survival" in change:
        data["survival_scores"] = [0.1, 0.2, 0.3]
        data["tail_start"], data["tail_probability"] = 0.3, 0.7
    with pytest.raises(CalibrationError, match=message):
        Calibration.from_dict(data)


def test_cards_from_before_the_tail_forms_load_as_gaussian(independent: Calibration) -> None:
    data = independent.to_dict()
    del data["tail_form"]
    assert Calibration.from_dict(data).tail_form == "gaussian"


def test_bounded_thresholds_and_rates_are_inverses(
    bounded: tuple[Calibration, np.ndarray, np.ndarray],
) -> None:
    calibration = bounded[0]
    for gallery in (1, 37, 5000):
        for fpir in (0.2, 0.01, 1e-5):
            threshold = calibration.threshold_for(fpir, gallery)
            assert threshold < 1.0
            assert calibration.false_positive_rate(threshold, gallery) == pytest.approx(
                fpir, rel=1e-6
            )


def test_missing_or_unknown_keys_are_refused(independent: Calibration) -> None:
    data = independent.to_dict()
    del data["size_scale"]
    with pytest.raises(CalibrationError, match="missing \\['size_scale'\\]"):
        Calibration.from_dict(data)
    with pytest.raises(CalibrationError, match="unknown \\['extra'\\]"):
        Calibration.from_dict({**independent.to_dict(), "extra": 1})
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


def test_one_identity_calibrates_without_a_size_fit() -> None:
    calibration = fit_calibration(np.random.default_rng(4).normal(size=(200, 1)))
    assert calibration.counts["size_fit_points"] == 0
    assert (calibration.size_scale, calibration.size_exponent) == (1.0, 1.0)
    assert calibration.gallery_identities == 1


def test_every_identity_keeps_a_gallery_image() -> None:
    pids = np.array([1, 1, 1, 1, 2, 2, 3, 4, 4, 4])
    gallery, probes = gallery_probe_split(pids, gallery_fraction=0.5, seed=0)
    assert sorted(set(pids[gallery])) == [1, 2, 3, 4]
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
    assert "withheld_identities" not in counts and counts["enrolled_identities"] == 40
    assert counts["nonmated_probes"] == 120 and counts["mated_probes"] == 120
    assert counts["impostor_scores"] == 120 * 39  # every probe against all but its own
    assert calibration.gallery_identities == 40
    assert dataclasses.replace(calibration) == calibration
    with pytest.raises(CalibrationError, match="at least 2 identities"):
        calibrate_labelled_set(features[:6], pids[:6])
