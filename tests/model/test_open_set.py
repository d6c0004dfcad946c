import numpy as np
import pytest
import torch

from model.evaluation.open_set import (
    det_curve,
    identity_scores,
    open_set_summary,
    operating_point,
    split_open_set,
    withhold_identities,
)


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    values = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return values / np.linalg.norm(values, axis=1, keepdims=True)


def test_identity_score_is_the_best_entry_of_each_identity() -> None:
    query, gallery = _unit(7, 16, 0), _unit(11, 16, 1)
    pids = np.array([5, 3, 5, 9, 3, 3, 9, 5, 12, 12, 3])
    result = identity_scores(query, gallery, pids)
    assert result.identities.tolist() == [3, 5, 9, 12]
    similarity = query @ gallery.T
    for column, pid in enumerate(result.identities):
        expected = similarity[:, pids == pid].max(axis=1)
        np.testing.assert_allclose(result.scores[:, column], expected, rtol=1e-5, atol=1e-6)
    chunked = identity_scores(
        torch.from_numpy(query), torch.from_numpy(gallery), pids, chunk_size=2
    )
    np.testing.assert_allclose(chunked.scores, result.scores, rtol=1e-6, atol=1e-6)


def test_unnormalised_features_are_scored_by_cosine() -> None:
    query, gallery = _unit(3, 8, 2), _unit(4, 8, 3)
    pids = np.array([1, 2, 3, 4])
    plain = identity_scores(query, gallery, pids).scores
    scaled = identity_scores(query * 7.0, gallery * 0.1, pids).scores
    np.testing.assert_allclose(plain, scaled, rtol=1e-5, atol=1e-6)


def test_same_camera_entries_of_the_probes_identity_are_ignored() -> None:
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    gallery = np.array([[1.0, 0.0], [0.6, 0.8], [1.0, 0.0]], dtype=np.float32)
    result = identity_scores(
        query,
        gallery,
        np.array([1, 1, 2]),
        query_pids=np.array([1]),
        query_camids=np.array([4]),
        gallery_camids=np.array([4, 5, 4]),
    )
    # pid 1's same-camera twin is ignored; pid 2 in the same camera is a different person.
    np.testing.assert_allclose(result.scores, [[0.6, 1.0]], rtol=1e-6)


def test_identity_scores_reject_bad_input() -> None:
    query, gallery = _unit(2, 4, 0), _unit(3, 4, 1)
    with pytest.raises(ValueError, match="dimensions differ"):
        identity_scores(query, _unit(3, 5, 1), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="3 feature rows"):
        identity_scores(query, gallery, np.array([1, 2]))
    with pytest.raises(ValueError, match="NaN"):
        identity_scores(np.full((1, 4), np.nan, dtype=np.float32), gallery, np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="needs query_pids"):
        identity_scores(query, gallery, np.array([1, 2, 3]), query_camids=np.array([1, 1]))
    with pytest.raises(ValueError, match="empty"):
        identity_scores(query, np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.int64))


def test_withholding_is_seeded_and_leaves_both_sides_non_empty() -> None:
    ids = np.arange(10, 30)
    first = withhold_identities(ids, 0.5, seed=4)
    assert len(first) == 10 and set(first) <= set(ids)
    np.testing.assert_array_equal(first, withhold_identities(ids, 0.5, seed=4))
    assert not np.array_equal(first, withhold_identities(ids, 0.5, seed=5))
    assert len(withhold_identities([1, 2], 0.99)) == 1  # one stays enrolled
    assert len(withhold_identities([1, 2, 3], 0.01)) == 1  # one is withheld
    with pytest.raises(ValueError, match="at least 2 identities"):
        withhold_identities([7, 7, 7])
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        withhold_identities(ids, 1.0)


def _scores_for(matrix: list[list[float]], identities: list[int]):
    from model.evaluation.open_set import IdentityScores

    return IdentityScores(np.array(matrix, dtype=np.float32), np.array(identities))


def test_a_wrong_identity_above_threshold_is_a_miss_not_a_hit() -> None:
    # Identities 1, 2 enrolled, 3 withheld. Probes: two of pid 1, one of pid 3.
    scores = _scores_for(
        [[0.9, 0.2, 0.1], [0.3, 0.8, 0.0], [0.4, 0.5, 0.95]],
        [1, 2, 3],
    )
    split = split_open_set(scores, np.array([1, 1, 3]), withheld=np.array([3]))
    assert split.gallery_identities == 2
    assert split.mated_correct.tolist() == [True, False]
    np.testing.assert_allclose(split.nonmated_scores, [0.5])  # the withheld column is gone
    assert split.fnir(0.7) == pytest.approx(0.5)  # the second probe's top is pid 2: a miss
    assert split.fnir(0.95) == pytest.approx(1.0)
    assert split.fpir(0.5) == pytest.approx(1.0)
    assert split.fpir(0.51) == pytest.approx(0.0)


def test_no_non_mated_or_no_mated_probe_is_a_clear_error() -> None:
    scores = _scores_for([[0.9, 0.2], [0.3, 0.8]], [1, 2])
    with pytest.raises(ValueError, match="no probe is non-mated"):
        split_open_set(scores, np.array([1, 2]), withheld=np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="no probe is mated"):
        split_open_set(scores, np.array([2, 2]), withheld=np.array([2]))
    with pytest.raises(ValueError, match="every gallery identity is withheld"):
        split_open_set(scores, np.array([1, 2]), withheld=np.array([1, 2]))


def test_one_enrolled_identity_still_gives_an_open_set_split() -> None:
    scores = _scores_for([[0.9, 0.1], [0.2, 0.7]], [1, 2])
    split = split_open_set(scores, np.array([1, 2]), withheld=np.array([2]))
    assert split.gallery_identities == 1
    assert split.mated_correct.tolist() == [True]
    np.testing.assert_allclose(split.nonmated_scores, [0.2])


def test_operating_point_meets_the_target_with_the_lowest_threshold() -> None:
    rng = np.random.default_rng(0)
    impostor = rng.normal(0.0, 0.1, size=(1000, 1))
    genuine = rng.normal(0.6, 0.1, size=(200, 1))
    scores = _scores_for(np.vstack([genuine, impostor]).tolist(), [1])
    pids = np.array([1] * 200 + [2] * 1000)
    split = split_open_set(scores, pids, withheld=np.array([], dtype=np.int64))
    point = operating_point(split, 0.01)
    assert point.fpir == pytest.approx(0.01)
    lower = np.nextafter(point.threshold, -np.inf)
    assert split.fpir(np.nextafter(lower, -np.inf)) > 0.01  # any lower threshold breaks it
    assert point.dir_rank1 == pytest.approx(1.0 - point.fnir)
    unresolved = operating_point(split, 0.0001)  # fewer than 1/target non-mated probes
    assert unresolved.threshold is None and unresolved.fnir is None
    summary = open_set_summary(split)
    assert summary["nonmated_probes"] == 1000 and summary["mated_probes"] == 200
    assert [p["target_fpir"] for p in summary["operating_points"]] == [0.1, 0.01, 0.001]


def test_det_curve_trades_fpir_against_fnir() -> None:
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(50, 3)).tolist()
    scores = _scores_for(matrix, [1, 2, 3])
    pids = rng.integers(1, 6, size=50)
    split = split_open_set(scores, pids, withheld=np.array([3]))
    curve = det_curve(split)
    assert (np.diff(curve.thresholds) > 0).all()
    assert (np.diff(curve.fpir) <= 0).all() and (np.diff(curve.fnir) >= 0).all()
    assert curve.fpir[0] == 1.0
