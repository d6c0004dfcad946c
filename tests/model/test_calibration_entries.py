"""The entries model: a calibration made with m entries per identity, used at another m.

Scores are generated so that the true FPIR is computable: per-entry impostor scores
i.i.d. Normal(0, SD) (or with a per-identity offset shared by its entries), an
identity's score the best of its entries, as ``POST /query`` scores.
"""

import math

import numpy as np
import pytest

from model.evaluation.calibration import Calibration, CalibrationError
from model.evaluation.calibration_fit import EntryScores, fit_calibration

SD = 0.1
PROBES, IDENTITIES, ENTRIES = 1000, 200, 4


def _survival(threshold: float, sd: float = SD) -> float:
    return 0.5 * math.erfc(threshold / (sd * math.sqrt(2.0)))


def _calibrate(entry_scores: np.ndarray, *, with_entries: bool = True) -> Calibration:
    owner = np.repeat(np.arange(IDENTITIES), ENTRIES)
    identity_scores = entry_scores.reshape(PROBES, IDENTITIES, ENTRIES).max(axis=2)
    entries = EntryScores(entry_scores, owner, np.arange(PROBES)) if with_entries else None
    return fit_calibration(identity_scores, entries=entries, confidence=None)


@pytest.fixture(scope="module")
def independent_entries() -> np.ndarray:
    return np.random.default_rng(0).normal(0.0, SD, size=(PROBES, IDENTITIES * ENTRIES))


def test_independent_entries_fit_an_exponent_near_one(independent_entries: np.ndarray) -> None:
    calibration = _calibrate(independent_entries)
    assert calibration.entries_per_identity == ENTRIES
    assert calibration.counts["entries_fit_points"] > 10
    assert calibration.entries_exponent == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("entries", [1, 16, 64])
@pytest.mark.parametrize("fpir", [0.1, 0.01])
def test_the_promise_holds_at_other_entry_counts(
    independent_entries: np.ndarray, entries: int, fpir: float
) -> None:
    calibration = _calibrate(independent_entries)
    threshold = calibration.threshold_for(fpir, IDENTITIES, entries)
    true_fpir = 1.0 - (1.0 - _survival(threshold)) ** (IDENTITIES * entries)
    assert 0.5 <= true_fpir / fpir <= 2.0


def test_without_the_entries_model_the_promise_breaks(independent_entries: np.ndarray) -> None:
    """The failure the model exists for: calibrated at 4 entries, used at 64."""
    calibration = _calibrate(independent_entries, with_entries=False)
    assert calibration.entries_exponent == 0.0
    threshold = calibration.threshold_for(0.01, IDENTITIES, 64)
    true_fpir = 1.0 - (1.0 - _survival(threshold)) ** (IDENTITIES * 64)
    assert true_fpir / 0.01 > 4.0


def _best_of_shared(threshold: float, shared: float, own: float, entries: int) -> float:
    """P(a + max of ``entries`` e_j >= T), a ~ N(0, shared), e_j ~ N(0, own): integrated."""
    offsets = np.linspace(-8 * shared, 8 * shared, 4001)
    weights = np.exp(-0.5 * (offsets / shared) ** 2)
    below = np.array([0.5 * math.erfc(-(threshold - a) / (own * math.sqrt(2))) for a in offsets])
    return float((weights * (1.0 - below**entries)).sum() / weights.sum())


@pytest.mark.parametrize("entries", [1, 32])
def test_entries_of_one_person_that_score_alike_count_for_less(entries: int) -> None:
    """A probe that resembles an identity resembles all its entries: a shared offset."""
    shared, own = 0.1, 0.04
    rng = np.random.default_rng(1)
    scores = rng.normal(0.0, shared, size=(PROBES, IDENTITIES, 1)) + rng.normal(
        0.0, own, size=(PROBES, IDENTITIES, ENTRIES)
    )
    calibration = _calibrate(scores.reshape(PROBES, -1))
    assert 0.0 < calibration.entries_exponent < 0.85
    for fpir in (0.1, 0.01):
        threshold = calibration.threshold_for(fpir, IDENTITIES, entries)
        per_identity = _best_of_shared(threshold, shared, own, entries)
        true_fpir = 1.0 - (1.0 - per_identity) ** IDENTITIES
        assert 0.5 <= true_fpir / fpir <= 2.0, fpir


def test_the_model_is_stored_and_old_calibrations_load_without_it(
    independent_entries: np.ndarray,
) -> None:
    calibration = _calibrate(independent_entries)
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    old = calibration.to_dict()
    del old["entries_per_identity"], old["entries_exponent"]
    loaded = Calibration.from_dict(old)
    assert loaded.entries_exponent == 0.0
    # not modelled: any entry count gives the threshold of the calibration's own
    assert loaded.threshold_for(0.01, 50, 64) == loaded.threshold_for(0.01, 50)


@pytest.mark.parametrize(
    ("key", "value"),
    [("entries_exponent", 1.5), ("entries_exponent", -0.1), ("entries_per_identity", 0.5)],
)
def test_impossible_entries_models_are_refused(
    independent_entries: np.ndarray, key: str, value: float
) -> None:
    data = _calibrate(independent_entries).to_dict() | {key: value}
    with pytest.raises(CalibrationError, match=key):
        Calibration.from_dict(data)


def test_an_entry_count_below_one_is_refused(independent_entries: np.ndarray) -> None:
    with pytest.raises(CalibrationError, match="entries_per_identity"):
        _calibrate(independent_entries).threshold_for(0.01, 10, 0.0)


def test_entry_scores_must_match_the_identity_matrix(independent_entries: np.ndarray) -> None:
    identity_scores = independent_entries.reshape(PROBES, IDENTITIES, ENTRIES).max(axis=2)
    rows = np.arange(PROBES)
    owner = np.repeat(np.arange(IDENTITIES), ENTRIES)
    missing_one = owner % (IDENTITIES - 1)
    with pytest.raises(CalibrationError, match="every enrolled identity"):
        fit_calibration(
            identity_scores, entries=EntryScores(independent_entries, missing_one, rows)
        )
    with pytest.raises(CalibrationError, match="one identity per entry"):
        fit_calibration(
            identity_scores,
            entries=EntryScores(independent_entries[:, :10], np.arange(IDENTITIES), rows),
        )
    with pytest.raises(CalibrationError, match="one row of the score matrix per probe"):
        fit_calibration(
            identity_scores, entries=EntryScores(independent_entries, owner, rows + PROBES)
        )
