"""k-reciprocal re-ranking against a plain dense implementation written from the paper.

``dense_re_ranking`` follows the authors' well-known numpy code step by step (full N x N
matrices, Python loops), with its accumulations in float64 like the implementation under
test. The bounded-memory implementation must give the same distances and the same metrics
on small problems, including problems full of exact distance ties, whatever the memory
budget (a tiny one forces many chunks).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.evaluation.distances import Metric
from model.evaluation.metrics import compute_reid_metrics, score_distance_chunks
from model.evaluation.reranking import KReciprocalSettings, k_reciprocal_distance_chunks


def dense_re_ranking(
    original: np.ndarray, num_query: int, k1: int, k2: int, lambda_value: float
) -> np.ndarray:
    """Re-ranked (query, gallery) distances from the full (N, N) float32 distance matrix."""
    original = original / original.max(axis=1, keepdims=True)
    all_num = original.shape[0]
    initial_rank = np.argsort(original, axis=1, kind="stable")
    V = np.zeros((all_num, all_num), dtype=np.float64)
    for i in range(all_num):
        forward_k_neigh_index = initial_rank[i, : k1 + 1]
        backward_k_neigh_index = initial_rank[forward_k_neigh_index, : k1 + 1]
        fi = np.where(backward_k_neigh_index == i)[0]
        k_reciprocal_index = forward_k_neigh_index[fi]
        k_reciprocal_expansion_index = k_reciprocal_index
        for candidate in k_reciprocal_index:
            half = int(np.around(k1 / 2.0)) + 1
            candidate_forward_k_neigh_index = initial_rank[candidate, :half]
            candidate_backward_k_neigh_index = initial_rank[candidate_forward_k_neigh_index, :half]
            fi_candidate = np.where(candidate_backward_k_neigh_index == candidate)[0]
            candidate_k_reciprocal_index = candidate_forward_k_neigh_index[fi_candidate]
            shared = np.intersect1d(candidate_k_reciprocal_index, k_reciprocal_index)
            if len(shared) > 2.0 / 3 * len(candidate_k_reciprocal_index):
                k_reciprocal_expansion_index = np.append(
                    k_reciprocal_expansion_index, candidate_k_reciprocal_index
                )
        k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
        weight = np.exp(-original[i, k_reciprocal_expansion_index].astype(np.float64))
        V[i, k_reciprocal_expansion_index] = weight / np.sum(weight)
    if k2 != 1:
        V = np.stack([np.mean(V[initial_rank[i, :k2], :], axis=0) for i in range(all_num)])
    inv_index = [np.where(V[:, i] != 0)[0] for i in range(all_num)]
    jaccard_dist = np.zeros((num_query, all_num), dtype=np.float64)
    for i in range(num_query):
        temp_min = np.zeros(all_num, dtype=np.float64)
        ind_non_zero = np.where(V[i, :] != 0)[0]
        for j in ind_non_zero:
            images = inv_index[j]
            temp_min[images] += np.minimum(V[i, j], V[images, j])
        jaccard_dist[i] = 1 - temp_min / (2.0 - temp_min)
    final = (
        jaccard_dist * (1 - lambda_value) + original[:num_query].astype(np.float64) * lambda_value
    )
    return final[:, num_query:].astype(np.float32)


def dense_distances(features: np.ndarray, metric: Metric) -> np.ndarray:
    """The evaluator's distance between all pairs, clamped at zero, in float32."""
    features = features.astype(np.float64)
    if metric == "cosine":
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        distances = 1.0 - unit @ unit.T
    else:
        norms = np.square(features).sum(axis=1)
        distances = norms[:, None] + norms[None, :] - 2.0 * features @ features.T
    return np.maximum(distances, 0.0).astype(np.float32)


def problem(seed: int, kind: str, num_query: int = 30, num_gallery: int = 80) -> dict:
    """Features with identities and cameras. ``kind``:

    * ``continuous``: Gaussian identity centres plus noise (no exact ties);
    * ``integers``: small integer vectors, exact squared Euclidean distances with many ties;
    * ``halves``: unit vectors with four entries of +-1/2, exact cosine distances with many
      ties, and some gallery items duplicated exactly.
    """
    rng = np.random.default_rng(seed)
    num_ids, dim = 12, 16
    pids = rng.integers(0, num_ids, num_query + num_gallery)
    cams = rng.integers(0, 4, num_query + num_gallery)
    if kind == "continuous":
        centres = rng.normal(size=(num_ids, dim))
        features = centres[pids] + rng.normal(scale=0.9, size=(len(pids), dim))
    elif kind == "integers":
        centres = rng.integers(-2, 3, size=(num_ids, dim))
        features = centres[pids] + rng.integers(-1, 2, size=(len(pids), dim))
    else:
        features = np.zeros((len(pids), dim))
        for row in range(len(pids)):
            columns = rng.choice(dim, 4, replace=False)
            features[row, columns] = rng.choice([-0.5, 0.5], 4)
        copies = rng.choice(np.arange(num_query, len(pids)), 10, replace=False)
        features[copies[5:]] = features[copies[:5]]
    features = features.astype(np.float32)
    return {
        "query_features": features[:num_query],
        "gallery_features": features[num_query:],
        "query_pids": pids[:num_query],
        "gallery_pids": pids[num_query:],
        "query_camids": cams[:num_query],
        "gallery_camids": cams[num_query:],
    }


def ids(data: dict) -> tuple[np.ndarray, ...]:
    return tuple(
        data[key] for key in ("query_pids", "gallery_pids", "query_camids", "gallery_camids")
    )


def bounded_distances(
    data: dict, settings: KReciprocalSettings, metric: Metric, budget: int = 512 * 1024**2
) -> np.ndarray:
    chunks = k_reciprocal_distance_chunks(
        torch.from_numpy(data["query_features"]),
        torch.from_numpy(data["gallery_features"]),
        settings,
        metric=metric,
        memory_budget_bytes=budget,
    )
    return torch.cat(list(chunks)).numpy()


def reference_distances(data: dict, settings: KReciprocalSettings, metric: Metric) -> np.ndarray:
    features = np.concatenate([data["query_features"], data["gallery_features"]])
    return dense_re_ranking(
        dense_distances(features, metric),
        len(data["query_features"]),
        settings.k1,
        settings.k2,
        settings.lambda_value,
    )


CASES = [
    pytest.param(kind, metric, seed, id=f"{kind}-{metric}-{seed}")
    for kind, metric in (("continuous", "cosine"), ("integers", "euclidean"), ("halves", "cosine"))
    for seed in range(3)
]


@pytest.mark.parametrize(("kind", "metric", "seed"), CASES)
@pytest.mark.parametrize(
    "settings",
    [
        KReciprocalSettings(),
        KReciprocalSettings(k1=5, k2=3, lambda_value=0.5),
        KReciprocalSettings(k1=7, k2=1, lambda_value=0.0),
    ],
    ids=["paper-defaults", "k1-5-k2-3", "k1-7-no-expansion"],
)
def test_distances_rankings_and_metrics_equal_the_dense_reference(
    kind: str, metric: Metric, seed: int, settings: KReciprocalSettings
) -> None:
    data = problem(seed, kind)
    expected = reference_distances(data, settings, metric)
    actual = bounded_distances(data, settings, metric)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
    if kind != "continuous":  # exact input distances: the same float32 values
        np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(
        np.argsort(actual, axis=1, kind="stable"), np.argsort(expected, axis=1, kind="stable")
    )
    reranked = compute_reid_metrics(
        data["query_features"], data["gallery_features"], *ids(data), metric=metric, rerank=settings
    )
    reference = score_distance_chunks([torch.from_numpy(expected)], *ids(data))
    assert reranked == reference


@pytest.mark.parametrize("budget", [1, 4096, 50_000])
def test_a_tiny_memory_budget_gives_identical_results_in_more_chunks(budget: int) -> None:
    data = problem(7, "halves")
    settings = KReciprocalSettings(k1=6, k2=3)
    whole = bounded_distances(data, settings, "cosine")
    chunks = list(
        k_reciprocal_distance_chunks(
            torch.from_numpy(data["query_features"]),
            torch.from_numpy(data["gallery_features"]),
            settings,
            metric="cosine",
            memory_budget_bytes=budget,
        )
    )
    assert len(chunks) > 1
    np.testing.assert_array_equal(torch.cat(chunks).numpy(), whole)
    kwargs = {"metric": "cosine", "rerank": settings}
    small = compute_reid_metrics(
        data["query_features"], data["gallery_features"], *ids(data), **kwargs,
        memory_budget_bytes=budget,
    )  # fmt: skip
    assert small == compute_reid_metrics(
        data["query_features"], data["gallery_features"], *ids(data), **kwargs
    )


def test_more_neighbours_than_items_use_every_item_like_the_reference() -> None:
    data = problem(3, "integers", num_query=4, num_gallery=9)
    settings = KReciprocalSettings(k1=20, k2=15)
    expected = reference_distances(data, settings, "euclidean")
    np.testing.assert_array_equal(bounded_distances(data, settings, "euclidean"), expected)


def test_reranking_helps_where_neighbours_agree() -> None:
    """Not a proof, a sanity check: on clustered data the paper's gain shows up in mAP."""
    data = problem(11, "continuous", num_query=60, num_gallery=240)
    plain = compute_reid_metrics(data["query_features"], data["gallery_features"], *ids(data))
    reranked = compute_reid_metrics(
        data["query_features"], data["gallery_features"], *ids(data),
        rerank=KReciprocalSettings(),
    )  # fmt: skip
    assert reranked.mAP > plain.mAP


def test_identical_features_cannot_be_normalised() -> None:
    features = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="distance 0 from every other"):
        compute_reid_metrics(
            features, features, [1, 2, 3], [1, 2, 3], [0, 0, 0], [1, 1, 1],
            rerank=KReciprocalSettings(),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k1": 0}, "k1 must be a positive integer"),
        ({"k1": 2.5}, "k1 must be a positive integer"),
        ({"k2": True}, "k2 must be a positive integer"),
        ({"lambda_value": 1.5}, r"lambda must be a number in \[0, 1\]"),
        ({"lambda_value": float("nan")}, r"lambda must be a number in \[0, 1\]"),
    ],
)
def test_bad_settings_are_rejected_precisely(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KReciprocalSettings(**kwargs)
