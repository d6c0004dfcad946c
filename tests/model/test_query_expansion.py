"""Average query expansion against a direct dense implementation of its definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.evaluation.distances import Metric
from model.evaluation.metrics import compute_reid_metrics
from model.evaluation.query_expansion import average_query_expansion


def dense_query_expansion(
    query: np.ndarray, gallery: np.ndarray, k: int, metric: Metric
) -> np.ndarray:
    """Each query: mean of itself and its k nearest gallery items (stable ties), in float64."""
    query, gallery = query.astype(np.float64), gallery.astype(np.float64)
    if metric == "cosine":
        query = query / np.linalg.norm(query, axis=1, keepdims=True)
        gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
        distances = 1.0 - query @ gallery.T
    else:
        distances = np.square(query[:, None, :] - gallery[None, :, :]).sum(axis=2)
    nearest = np.argsort(np.maximum(distances, 0.0), axis=1, kind="stable")[:, :k]
    expanded = (query + gallery[nearest].sum(axis=1)) / (k + 1)
    if metric == "cosine":
        expanded = expanded / np.linalg.norm(expanded, axis=1, keepdims=True)
    return expanded.astype(np.float32)


def problem(seed: int, integers: bool) -> dict:
    rng = np.random.default_rng(seed)
    num_query, num_gallery, num_ids, dim = 30, 80, 10, 12
    pids = rng.integers(0, num_ids, num_query + num_gallery)
    if integers:  # exact distances with many ties
        features = rng.integers(-2, 3, (num_ids, dim))[pids] + rng.integers(-1, 2, (len(pids), dim))
    else:
        features = rng.normal(size=(num_ids, dim))[pids] + rng.normal(size=(len(pids), dim))
    features = features.astype(np.float32)
    cams = rng.integers(0, 3, len(pids))
    return {
        "query_features": features[:num_query],
        "gallery_features": features[num_query:],
        "query_pids": pids[:num_query],
        "gallery_pids": pids[num_query:],
        "query_camids": cams[:num_query],
        "gallery_camids": cams[num_query:],
    }


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("metric", "integers"), [("cosine", False), ("euclidean", True)])
@pytest.mark.parametrize("k", [1, 5])
def test_expanded_queries_and_metrics_equal_the_dense_definition(
    seed: int, metric: Metric, integers: bool, k: int
) -> None:
    data = problem(seed, integers)
    expected = dense_query_expansion(data["query_features"], data["gallery_features"], k, metric)
    actual = average_query_expansion(
        torch.from_numpy(data["query_features"]),
        torch.from_numpy(data["gallery_features"]),
        k,
        metric=metric,
        memory_budget_bytes=512 * 1024**2,
    ).numpy()
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
    if integers:
        np.testing.assert_array_equal(actual, expected)
    rest = {key: value for key, value in data.items() if key != "query_features"}
    assert compute_reid_metrics(**data, metric=metric, query_expansion=k) == compute_reid_metrics(
        expected, **rest, metric=metric
    )


def test_a_tiny_memory_budget_gives_identical_queries() -> None:
    data = problem(4, integers=False)
    query, gallery = (torch.from_numpy(data[f"{s}_features"]) for s in ("query", "gallery"))
    expand = average_query_expansion
    np.testing.assert_array_equal(
        expand(query, gallery, 3, metric="cosine", memory_budget_bytes=1).numpy(),
        expand(query, gallery, 3, metric="cosine", memory_budget_bytes=512 * 1024**2).numpy(),
    )


@pytest.mark.parametrize(
    ("k", "message"),
    [(0, "positive integer"), (True, "positive integer"), (81, "needs at least 81 gallery items")],
)
def test_bad_k_is_rejected_precisely(k: int, message: str) -> None:
    data = problem(0, integers=False)
    with pytest.raises(ValueError, match=message):
        compute_reid_metrics(**data, query_expansion=k)
