"""Every labelled person both enrolls and probes: a probe is non-mated against every
identity but its own (`fit_calibration`'s ``own_column``). The mated scores must never
reach the fit, and the promise must hold for galleries of people the calibration never
saw, where the truth is counted directly."""

import numpy as np
import pytest

from model.evaluation.calibration import CalibrationError
from model.evaluation.calibration_fit import EntryScores, fit_calibration
from model.evaluation.labelled_calibration import calibrate_labelled_set
from model.evaluation.open_set import identity_scores

DIM = 32


def _people(rng: np.random.Generator, identities: int, crops: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings of fresh people: a random centre each, plus per-crop noise."""
    pids = np.repeat(np.arange(identities), crops)
    features = rng.normal(size=(identities, DIM))[pids] + rng.normal(
        scale=0.9, size=(len(pids), DIM)
    )
    return (features / np.linalg.norm(features, axis=1, keepdims=True)).astype(np.float32), pids


def test_a_probes_own_identity_never_moves_the_calibration() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(0.0, 0.1, size=(300, 40))
    entries = np.repeat(scores, 2, axis=1) + rng.normal(0.0, 0.01, size=(300, 80))
    owner = np.repeat(np.arange(40), 2)
    own = rng.integers(-1, 40, size=300)
    fits = []
    for mated_score in (5.0, -5.0):  # far above and far below every impostor score
        matrix, per_entry = scores.copy(), entries.copy()
        rows = np.flatnonzero(own >= 0)
        matrix[rows, own[rows]] = mated_score
        per_entry[owner[None, :] == own[:, None]] = mated_score
        fits.append(
            fit_calibration(
                matrix,
                entries=EntryScores(per_entry, owner, np.arange(300)),
                own_column=own,
                confidence=None,
            )
        )
    assert fits[0].to_dict() == fits[1].to_dict()
    assert fits[0].counts["impostor_scores"] == 300 * 40 - int((own >= 0).sum())
    assert fits[0].counts["nonmated_probes"] == 300


@pytest.mark.parametrize(
    ("own", "message"),
    [
        (np.zeros(10, dtype=np.int64), "one integer own column per row"),
        (np.full(20, 0.5), "one integer own column per row"),
        (np.full(20, 6, dtype=np.int64), r"must be -1 or in \[0, 6\)"),
        (np.full(20, -2, dtype=np.int64), r"must be -1 or in \[0, 6\)"),
    ],
)
def test_bad_own_columns_are_refused(own: np.ndarray, message: str) -> None:
    scores = np.random.default_rng(1).normal(size=(20, 6))
    with pytest.raises(CalibrationError, match=message):
        fit_calibration(scores, own_column=own)


def test_every_identity_its_own_is_too_little_to_calibrate() -> None:
    """One identity probed only by its own crops leaves no impostor score at all."""
    scores = np.random.default_rng(2).normal(size=(60, 1))
    with pytest.raises(CalibrationError, match="only 0 impostor scores"):
        fit_calibration(scores, own_column=np.zeros(60, dtype=np.int64))


def test_the_promise_holds_for_people_the_calibration_never_saw() -> None:
    """Calibrated on 150 people who all enroll and probe, then counted directly: fresh
    galleries of 50 and 300 other people, probed by 2,000 crops of yet others."""
    rng = np.random.default_rng(3)
    features, pids = _people(rng, 150, 4)
    calibration = calibrate_labelled_set(features, pids, seed=0, confidence=None)
    assert calibration.counts["enrolled_identities"] == 150
    assert calibration.counts["impostor_scores"] == 300 * 149
    strangers, _ = _people(rng, 1000, 2)
    for size in (50, 300):
        gallery, owners = _people(rng, size, 2)
        best = identity_scores(strangers, gallery, owners).scores.max(axis=1)
        for target in (0.1, 0.01):
            observed = float((best >= calibration.threshold_for(target, size)).mean())
            assert 0.5 * target <= observed <= 2.0 * target, (size, target, observed)
