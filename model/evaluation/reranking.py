"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017) in bounded memory, yielding distances chunk by chunk.

The re-ranked distance of query i to gallery item j is

    final(i, j) = (1 - lambda) * jaccard(i, j) + lambda * d(i, j) / max_k d(i, k)

where d is the evaluator's distance, the max runs over all query and gallery items, and
``jaccard = 1 - s / (2 - s)`` with ``s = sum_k min(V_i[k], V_j[k])`` over the k-reciprocal
features V (model/evaluation/reciprocal_encoding.py). The textbook code materialises every
(query + gallery)^2 matrix. Here the Jaccard term is non-zero only for pairs that share a
k-reciprocal neighbour, so it is accumulated sparsely (through an inverted index: for each
item k, the gallery items whose V has k) into one dense chunk of queries at a time, the
original distance of that chunk is recomputed from the features, and the chunk is handed to
the metrics and dropped. Every dense working set is sized from ``memory_budget_bytes``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from model.evaluation.distances import Metric, distance_function
from model.evaluation.reciprocal_encoding import initial_ranking, k_reciprocal_vectors
from model.evaluation.sparse_rows import SparseRows

DEFAULT_K1 = 20
DEFAULT_K2 = 6
DEFAULT_LAMBDA = 0.3
# Peak bytes per (query, gallery) pair of a chunk: the float64 overlap and its denominator,
# the float32 original distance and its float64 copy, plus the metrics' keys of the result.
_BYTES_PER_PAIR = 32
# Per (query, shared item, gallery item) triple gathered from the inverted index.
_BYTES_PER_TRIPLE = 64


@dataclass(frozen=True)
class KReciprocalSettings:
    """The paper's parameters; the defaults are the ones it (and BoT) report for Market-1501.

    ``k1``: neighbourhood of the k-reciprocal sets; ``k2``: neighbours averaged in local
    query expansion (1 turns it off); ``lambda_value``: weight of the original distance.
    """

    k1: int = DEFAULT_K1
    k2: int = DEFAULT_K2
    lambda_value: float = DEFAULT_LAMBDA

    def __post_init__(self) -> None:
        for name in ("k1", "k2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"re-ranking {name} must be a positive integer, got {value!r}")
        value = self.lambda_value
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0.0 <= value <= 1.0
        ):
            raise ValueError(f"re-ranking lambda must be a number in [0, 1], got {value!r}")

    def to_dict(self) -> dict[str, float]:
        """For reports: named like the command-line options (``lambda``, not lambda_value)."""
        return {"k1": self.k1, "k2": self.k2, "lambda": self.lambda_value}


def k_reciprocal_distance_chunks(
    query: torch.Tensor,
    gallery: torch.Tensor,
    settings: KReciprocalSettings,
    *,
    metric: Metric,
    memory_budget_bytes: int,
    chunk_size: int | None = None,
) -> Iterator[torch.Tensor]:
    """Re-ranked float32 distances of consecutive query chunks to the whole gallery.

    ``chunk_size`` queries per chunk, or by default as many as fit in half the budget (the
    other half bounds the inverted-index triples gathered for a chunk).
    """
    num_query, num_gallery = query.shape[0], gallery.shape[0]
    features = torch.cat([query, gallery])
    width = min(max(settings.k1 + 1, settings.k2), features.shape[0])
    ranking = initial_ranking(features, metric, width, memory_budget_bytes)
    vectors = k_reciprocal_vectors(
        features, metric, ranking, settings.k1, settings.k2, memory_budget_bytes
    )
    del features
    gallery_index = vectors.transpose_rows(num_query, num_query + num_gallery)
    distances_to = distance_function(metric, query, gallery)
    half_budget = max(1, memory_budget_bytes // 2)
    chunk_size = chunk_size or max(1, half_budget // (_BYTES_PER_PAIR * num_gallery))
    triple_limit = max(1, half_budget // _BYTES_PER_TRIPLE)
    weight = settings.lambda_value
    for start in range(0, num_query, chunk_size):
        stop = min(start + chunk_size, num_query)
        overlap = _shared_weight(vectors, gallery_index, start, stop, num_gallery, triple_limit)
        denominator = overlap.neg().add_(2.0)
        jaccard = overlap.div_(denominator).neg_().add_(1.0)
        del denominator
        original = distances_to(start, stop).clamp_min_(0.0)
        original.div_(ranking.row_max[start:stop].unsqueeze(1))
        jaccard.mul_(1.0 - weight).add_(original.double().mul_(weight))
        del original
        final = jaccard.float()
        del jaccard, overlap
        yield final


def _shared_weight(
    vectors: SparseRows,
    gallery_index: SparseRows,
    start: int,
    stop: int,
    num_gallery: int,
    triple_limit: int,
) -> torch.Tensor:
    """s(i, j) = sum_k min(V_i[k], V_j[k]) for queries ``start:stop`` and every gallery j.

    Only items k in V_i's support contribute, and for each only the gallery items listed
    under k in the inverted index; triples are gathered at most ``triple_limit`` at a time.
    """
    overlap = torch.zeros(
        (stop - start, num_gallery), dtype=torch.float64, device=vectors.values.device
    )
    flat = overlap.view(-1)
    rows, items, values = vectors.row_block(start, stop)
    ends = torch.cumsum(gallery_index.count_gathered(items), 0)
    first = 0
    while first < items.shape[0]:
        reached = int(ends[first - 1]) if first else 0
        last = int(torch.searchsorted(ends, reached + triple_limit, right=True))
        last = max(last, first + 1)
        owner, gallery_items, gallery_values = gallery_index.gather(items[first:last])
        shared = torch.minimum(values[first:last][owner], gallery_values)
        flat.index_add_(0, rows[first:last][owner] * num_gallery + gallery_items, shared)
        first = last
    return overlap
