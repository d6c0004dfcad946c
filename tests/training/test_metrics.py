"""compute_reid_metrics against hand-computed cases and a slow per-query reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from model.evaluation.distances import sort_keys
from model.evaluation.metrics import ReIDMetrics, compute_reid_metrics


def reference_metrics(
    qf: np.ndarray,
    gf: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
    metric: str,
    max_rank: int,
) -> dict[str, float | int | list[float]]:
    """The textbook protocol, one query at a time, in float64 with a stable argsort."""
    qf, gf = qf.astype(np.float64), gf.astype(np.float64)
    if metric == "cosine":
        qf = qf / np.linalg.norm(qf, axis=1, keepdims=True)
        gf = gf / np.linalg.norm(gf, axis=1, keepdims=True)
        dist = 1.0 - qf @ gf.T
    else:
        dist = ((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1)
    aps, inps, cmcs = [], [], []
    for i in range(len(qf)):
        order = np.argsort(dist[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i]))
        matches = (g_pids[order] == q_pids[i])[keep]
        if not matches.any():
            continue
        positions = np.flatnonzero(matches) + 1  # 1-based ranks of the positives
        aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
        inps.append(len(positions) / positions[-1])
        cmcs.append([1.0 if positions[0] <= k else 0.0 for k in range(1, max_rank + 1)])
    if not aps:
        return {"num_valid_query": 0}
    cmc = np.mean(cmcs, axis=0)
    first = np.array([c.index(1.0) + 1 if 1.0 in c else max_rank + 1 for c in cmcs])
    return {
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
        "cmc": cmc.tolist(),
        "rank1": float(cmc[0]),
        "rank5": float(np.mean(first <= 5)) if max_rank >= 5 else None,
        "num_valid_query": len(aps),
    }


def assert_matches_reference(result: ReIDMetrics, expected: dict) -> None:
    assert result.num_valid_query == expected["num_valid_query"]
    assert result.mAP == pytest.approx(expected["mAP"], abs=1e-9)
    assert result.mINP == pytest.approx(expected["mINP"], abs=1e-9)
    assert result.cmc == pytest.approx(expected["cmc"], abs=1e-12)
    assert result.rank1 == pytest.approx(expected["rank1"], abs=1e-12)
    if expected["rank5"] is not None:
        assert result.rank5 == pytest.approx(expected["rank5"], abs=1e-12)


def one_dim(values: list[float]) -> np.ndarray:
    """1-D features for Euclidean cases: the distance is just |q - g|, easy to rank by hand."""
    return np.asarray(values, dtype=np.float32).reshape(-1, 1)


def test_hand_computed_single_query() -> None:
    # Query pid 1 from camera 0 at position 0. Gallery (position, pid, cam):
    #   g0 (1, 2, 1)  g1 (2, 1, 1)  g2 (3, 1, 0)  g3 (4, 3, 1)  g4 (5, 1, 2)  g5 (6, 4, 1)
    # Ranked by distance: g0 g1 g2 g3 g4 g5. g2 is the same pid in the same camera: junk.
    # Junk-free list: g0(-) g1(+) g3(-) g4(+) g5(-) -> positives at ranks 2 and 4.
    # AP = (1/2 + 2/4) / 2 = 0.5. INP = 2 positives / rank 4 of the last = 0.5.
    # CMC: first positive at rank 2 -> [0, 1, 1, ...].
    result = compute_reid_metrics(
        one_dim([0.0]),
        one_dim([1, 2, 3, 4, 5, 6]),
        np.array([1]),
        np.array([2, 1, 1, 3, 1, 4]),
        np.array([0]),
        np.array([1, 1, 0, 1, 2, 1]),
        metric="euclidean",
        max_rank=8,
    )
    assert result.mAP == pytest.approx(0.5)
    assert result.mINP == pytest.approx(0.5)
    assert result.cmc == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert (result.rank1, result.rank5, result.rank10) == (0.0, 1.0, 1.0)
    assert (result.num_query, result.num_valid_query, result.num_gallery) == (1, 1, 6)


def test_hand_computed_two_queries_average() -> None:
    # Gallery on a line at 0..4 with pids [1, 2, 2, 1, 3], all from camera 9.
    # Query A: pid 1 at 0 (cam 0). Ranking g0+ g1- g2- g3+ g4-: positives at 1, 4.
    #   AP = (1/1 + 2/4) / 2 = 0.75; INP = 2/4 = 0.5; first positive at rank 1.
    # Query B: pid 2 at 4 (cam 0). Ranking g4- g3- g2+ g1+ g0-: positives at 3, 4.
    #   AP = (1/3 + 2/4) / 2 = 5/12; INP = 2/4 = 0.5; first positive at rank 3.
    # mAP = (0.75 + 5/12) / 2 = 7/12; mINP = 0.5; CMC = [1/2, 1/2, 1, 1].
    result = compute_reid_metrics(
        one_dim([0, 4]),
        one_dim([0, 1, 2, 3, 4]),
        np.array([1, 2]),
        np.array([1, 2, 2, 1, 3]),
        np.array([0, 0]),
        np.array([9, 9, 9, 9, 9]),
        metric="euclidean",
        max_rank=4,
    )
    assert result.mAP == pytest.approx(7 / 12)
    assert result.mINP == pytest.approx(0.5)
    assert result.cmc == [0.5, 0.5, 1.0, 1.0]
    assert result.rank1 == 0.5
    assert result.rank5 == 1.0


def test_ties_are_broken_by_gallery_index() -> None:
    # All three gallery items are equidistant; a stable sort keeps index order.
    # Positive first (index 0): AP = 1, INP = 1/1... positive at rank 1 -> AP 1, INP 1.
    # Positive last (index 2): ranked 3rd -> AP = 1/3, INP = 1/3, rank1 = 0.
    gallery = one_dim([1.0, 1.0, 1.0])
    first = compute_reid_metrics(
        one_dim([0.0]), gallery, [5], [5, 6, 7], [0], [1, 1, 1], metric="euclidean"
    )
    last = compute_reid_metrics(
        one_dim([0.0]), gallery, [5], [6, 7, 5], [0], [1, 1, 1], metric="euclidean"
    )
    assert (first.mAP, first.mINP, first.rank1) == (1.0, 1.0, 1.0)
    assert last.mAP == pytest.approx(1 / 3)
    assert last.mINP == pytest.approx(1 / 3)
    assert last.rank1 == 0.0
    assert last.cmc[:3] == [0.0, 0.0, 1.0]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e-45, 3e38, float("inf"), -1e-7, -1e-30]),
        min_size=1,
        max_size=30,
    )
)
def test_sort_keys_order_like_a_stable_argsort_of_clamped_distances(values: list[float]) -> None:
    # Keys must order exactly as (max(0, distance), index): -0.0, +0.0 and the small
    # negative residues of rounding all tie at zero and fall back to index order.
    distances = torch.tensor([values], dtype=torch.float32)
    expected = np.argsort(np.maximum(np.asarray(values, dtype=np.float32), 0.0), kind="stable")
    keys = sort_keys(distances, torch.arange(len(values)))
    assert torch.argsort(keys[0]).tolist() == expected.tolist()


def test_queries_without_cross_camera_positive_are_skipped() -> None:
    # Query 0 (pid 1): positive g1 at rank 2 -> AP 0.5.
    # Query 1 (pid 7): no pid-7 item in the gallery -> skipped.
    # Query 2 (pid 3, cam 2): its only pid-3 item g2 is in camera 2 too -> junk -> skipped.
    result = compute_reid_metrics(
        one_dim([0, 0, 0]),
        one_dim([1, 2, 3]),
        [1, 7, 3],
        [2, 1, 3],
        [0, 0, 2],
        [1, 1, 2],
        metric="euclidean",
    )
    assert result.num_query == 3
    assert result.num_valid_query == 1
    assert result.mAP == pytest.approx(0.5)
    assert result.rank1 == 0.0


def test_same_camera_same_pid_is_removed_but_other_same_camera_items_count() -> None:
    # Query pid 1, cam 0. Gallery by distance: g0 (pid 1, cam 0) junk, g1 (pid 2, cam 0)
    # a negative that stays despite the shared camera, g2 (pid 1, cam 1) positive.
    # Junk-free list: g1(-) g2(+) -> AP = 1/2, first positive at rank 2.
    result = compute_reid_metrics(
        one_dim([0]), one_dim([1, 2, 3]), [1], [1, 2, 1], [0], [0, 0, 1], metric="euclidean"
    )
    assert result.mAP == pytest.approx(0.5)
    assert result.cmc[:2] == [0.0, 1.0]


def test_gallery_shorter_than_max_rank_pads_with_last_value() -> None:
    # Two queries, three gallery items; first positives at ranks 1 and 3.
    # cmc = [1/2, 1/2, 1, 1, 1, ...] with max_rank entries in total.
    result = compute_reid_metrics(
        one_dim([0, 0]),
        one_dim([1, 2, 3]),
        [1, 2],
        [1, 3, 2],
        [0, 0],
        [1, 1, 1],
        metric="euclidean",
        max_rank=50,
    )
    assert len(result.cmc) == 50
    assert result.cmc[:3] == [0.5, 0.5, 1.0]
    assert set(result.cmc[2:]) == {1.0}
    assert result.rank10 == 1.0


def test_all_queries_junk_only_is_an_error() -> None:
    with pytest.raises(ValueError, match="no query has a positive"):
        compute_reid_metrics(
            one_dim([0, 1]), one_dim([1, 2]), [1, 2], [1, 2], [0, 1], [0, 1], metric="euclidean"
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query_features": np.zeros(3, np.float32)}, "query_features must be 2-D"),
        ({"gallery_features": np.zeros((4, 3), np.float32)}, "dimensions differ"),
        ({"query_pids": np.array([1, 2])}, "query_pids has 2 entries"),
        ({"gallery_camids": np.array([0.5, 1, 1, 1])}, "gallery_camids must hold integers"),
        ({"query_features": np.full((1, 2), np.nan, np.float32)}, "NaN or infinite"),
        ({"gallery_features": np.zeros((0, 2), np.float32)}, "gallery_features is empty"),
        ({"metric": "manhattan"}, "metric must be"),
        ({"max_rank": 0}, "max_rank must be"),
        ({"chunk_size": 0}, "chunk_size must be"),
    ],
)
def test_invalid_inputs_are_rejected_precisely(kwargs: dict, message: str) -> None:
    args = {
        "query_features": np.ones((1, 2), np.float32),
        "gallery_features": np.ones((4, 2), np.float32),
        "query_pids": np.array([1]),
        "gallery_pids": np.array([1, 2, 3, 4]),
        "query_camids": np.array([0]),
        "gallery_camids": np.array([1, 1, 1, 1]),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        compute_reid_metrics(**args)


def test_cosine_equals_euclidean_on_normalised_features() -> None:
    # Entries of ±0.25 in 16-D have norm exactly 1, so |q-g|^2 = 2 - 2 cos exactly and
    # both metrics must rank (ties included) identically.
    rng = np.random.default_rng(0)
    qf = rng.choice([-0.25, 0.25], size=(20, 16)).astype(np.float32)
    gf = rng.choice([-0.25, 0.25], size=(60, 16)).astype(np.float32)
    args = (qf, gf, rng.integers(0, 5, 20), rng.integers(0, 5, 60))
    cams = (rng.integers(0, 3, 20), rng.integers(0, 3, 60))
    cosine = compute_reid_metrics(*args, *cams, metric="cosine")
    euclidean = compute_reid_metrics(*args, *cams, metric="euclidean")
    assert cosine == euclidean


def test_cosine_ignores_feature_scale_and_accepts_torch() -> None:
    rng = np.random.default_rng(1)
    qf, gf = rng.normal(size=(10, 8)), rng.normal(size=(30, 8))
    labels = (rng.integers(0, 4, 10), rng.integers(0, 4, 30))
    cams = (rng.integers(0, 2, 10), rng.integers(0, 2, 30))
    base = compute_reid_metrics(qf, gf, *labels, *cams)
    scaled = compute_reid_metrics(
        torch.tensor(qf * 7.0), torch.tensor(gf * 0.01), *map(torch.tensor, labels + cams)
    )
    assert scaled.mAP == pytest.approx(base.mAP)
    assert scaled.cmc == base.cmc


@st.composite
def retrieval_problems(draw: st.DrawFn) -> dict:
    """Small problems with many exact ties and many skipped queries.

    Features are small integers (Euclidean) or ±1 in 16-D scaled by powers of two
    (cosine), so every distance is exact in float32 and both implementations must agree
    bit for bit on the ranking, ties included.
    """
    metric = draw(st.sampled_from(["cosine", "euclidean"]))
    num_query = draw(st.integers(1, 12))
    num_gallery = draw(st.integers(1, 40))
    num_ids = draw(st.integers(1, 6))
    num_cams = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if metric == "euclidean":
        dim = draw(st.integers(1, 4))
        qf = rng.integers(-2, 3, size=(num_query, dim)).astype(np.float32)
        gf = rng.integers(-2, 3, size=(num_gallery, dim)).astype(np.float32)
    else:
        qf = rng.choice([-1.0, 1.0], size=(num_query, 16)) * 2.0 ** rng.integers(
            -3, 4, (num_query, 1)
        )
        gf = rng.choice([-1.0, 1.0], size=(num_gallery, 16)) * 2.0 ** rng.integers(
            -3, 4, (num_gallery, 1)
        )
        qf, gf = qf.astype(np.float32), gf.astype(np.float32)
    return {
        "qf": qf,
        "gf": gf,
        "q_pids": rng.integers(0, num_ids, num_query),
        "g_pids": rng.integers(0, num_ids, num_gallery),
        "q_cams": rng.integers(0, num_cams, num_query),
        "g_cams": rng.integers(0, num_cams, num_gallery),
        "metric": metric,
        "max_rank": draw(st.integers(1, 50)),
        "chunk_size": draw(st.integers(1, 13)),
    }


@settings(max_examples=150, deadline=None)
@given(retrieval_problems())
def test_chunked_matches_per_query_reference(problem: dict) -> None:
    args = [problem[k] for k in ("qf", "gf", "q_pids", "g_pids", "q_cams", "g_cams")]
    expected = reference_metrics(*args, problem["metric"], problem["max_rank"])
    kwargs = {"metric": problem["metric"], "max_rank": problem["max_rank"]}
    if expected["num_valid_query"] == 0:
        with pytest.raises(ValueError, match="no query has a positive"):
            compute_reid_metrics(*args, **kwargs, chunk_size=problem["chunk_size"])
        return
    chunked = compute_reid_metrics(*args, **kwargs, chunk_size=problem["chunk_size"])
    whole = compute_reid_metrics(*args, **kwargs)
    assert chunked == whole
    assert_matches_reference(chunked, expected)
    for value in (chunked.mAP, chunked.mINP, chunked.rank1, chunked.rank5, chunked.rank10):
        assert 0.0 <= value <= 1.0


def test_to_dict_is_json_ready() -> None:
    result = compute_reid_metrics(
        one_dim([0]), one_dim([1]), [1], [1], [0], [1], metric="euclidean", max_rank=2
    )
    assert result.to_dict() == {
        "mAP": 1.0,
        "mINP": 1.0,
        "rank1": 1.0,
        "rank5": 1.0,
        "rank10": 1.0,
        "cmc": [1.0, 1.0],
        "num_query": 1,
        "num_valid_query": 1,
        "num_gallery": 1,
    }
