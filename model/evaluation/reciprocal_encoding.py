"""The k-reciprocal feature of every item (Zhong et al., CVPR 2017), built sparsely.

Re-ranking describes each item i of the pooled query + gallery set (N items) by a vector
V_i over all N items: non-zero only on i's *k-reciprocal expansion set*, with Gaussian
weights ``exp(-d(i, j))`` normalised to sum to one, then averaged over i's ``k2`` nearest
items ("local query expansion"). The textbook code stores V, the full distance matrix and
the full argsort densely: N^2 floats each, about 35 GB per matrix at MSMT17 size. Here only
each item's ``max(k1 + 1, k2)`` nearest neighbours are kept (found chunk by chunk with exact
tie-breaking), and V is a sparse row matrix with a few dozen entries per item, so memory is
the budget for one dense chunk plus O(N * k1 * k2).

Definitions, exactly as in the authors' reference implementation:

* d is the evaluator's distance (cosine ``1 - cos`` or squared Euclidean, clamped at 0),
  divided by its row's largest value over all N items; a row is ranked by this ratio, ties
  to the lower index (a stable argsort);
* N(i, k) = the first ``k + 1`` items of i's ranking (i itself is usually the first);
  R(i, k) = {j in N(i, k) : i in N(j, k)};
* the expansion set is R(i, k1) plus, for each c in R(i, k1), the set R(c, round(k1 / 2))
  whenever more than two thirds of it lies in R(i, k1) (``round`` is Python's and
  numpy's half-to-even rounding, as ``np.around`` in the reference);
* with fewer than ``k + 1`` items, N(i, k) is all of them (the reference code's slicing).

V and its expansion are accumulated in float64 (the reference uses float32), so the result
does not hinge on float32 summation order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from model.evaluation.distances import (
    Metric,
    distance_function,
    nearest_columns,
    pair_distances,
)
from model.evaluation.sparse_rows import SparseRows

# Working bytes per (row, item) pair while ranking a chunk of rows: the float32 distance
# (reused for the ratio), its int64 sort key and topk's scratch.
_RANKING_BYTES_PER_PAIR = 16
# Per gathered sparse entry (owner, column, value, source position, sort scratch).
_BYTES_PER_ENTRY = 80


@dataclass(frozen=True)
class InitialRanking:
    """Each item's nearest items (closest first) and the largest distance in its row."""

    neighbours: torch.Tensor  # (N, width) int64
    row_max: torch.Tensor  # (N,) float32


def initial_ranking(
    features: torch.Tensor, metric: Metric, width: int, memory_budget_bytes: int
) -> InitialRanking:
    """One pass over the N x N distances, a chunk of rows at a time, keeping ``width``."""
    count = features.shape[0]
    distances_to = distance_function(metric, features, features)
    rows_per_chunk = max(1, memory_budget_bytes // (_RANKING_BYTES_PER_PAIR * count))
    neighbours = torch.empty((count, width), dtype=torch.int64, device=features.device)
    row_max = torch.empty(count, dtype=torch.float32, device=features.device)
    for start in range(0, count, rows_per_chunk):
        stop = min(start + rows_per_chunk, count)
        distances = distances_to(start, stop).clamp_min_(0.0)
        largest = distances.amax(dim=1)
        if not bool((largest > 0).all()):
            raise ValueError(
                "every feature vector is at distance 0 from every other; re-ranking "
                "normalises by the largest distance and is undefined"
            )
        distances.div_(largest.unsqueeze(1))
        neighbours[start:stop] = nearest_columns(distances, width)
        row_max[start:stop] = largest
    return InitialRanking(neighbours, row_max)


def k_reciprocal_vectors(
    features: torch.Tensor,
    metric: Metric,
    ranking: InitialRanking,
    k1: int,
    k2: int,
    memory_budget_bytes: int,
) -> SparseRows:
    """V after local query expansion: one sparse row per item, columns = items."""
    rows, columns = _expansion_entries(ranking.neighbours, k1, memory_budget_bytes)
    # Per pair: both gathered float32 vectors and their elementwise product.
    batch = max(1, memory_budget_bytes // (12 * features.shape[1] + 64))
    ratio = pair_distances(metric, features, rows, columns, batch_size=batch)
    ratio.div_(ranking.row_max[rows])
    weights = torch.exp(ratio.double().neg_())
    totals = torch.zeros(features.shape[0], dtype=torch.float64, device=features.device)
    totals.index_add_(0, rows, weights)
    indptr = torch.zeros(features.shape[0] + 1, dtype=torch.int64, device=features.device)
    torch.cumsum(torch.bincount(rows, minlength=features.shape[0]), 0, out=indptr[1:])
    vectors = SparseRows(indptr, columns, weights.div_(totals[rows]), features.shape[0])
    return _local_query_expansion(vectors, ranking.neighbours, k2, memory_budget_bytes)


def _reciprocal_mask(neighbours: torch.Tensor, k: int, rows_per_chunk: int) -> torch.Tensor:
    """mask[i, p]: i is among the first ``k`` neighbours of its own p-th neighbour (p < k)."""
    forward = neighbours[:, :k]
    mask = torch.empty(forward.shape, dtype=torch.bool, device=neighbours.device)
    for start in range(0, forward.shape[0], rows_per_chunk):
        stop = min(start + rows_per_chunk, forward.shape[0])
        own = torch.arange(start, stop, device=neighbours.device).view(-1, 1, 1)
        mask[start:stop] = (forward[forward[start:stop]] == own).any(dim=2)
    return mask


def _expansion_entries(
    neighbours: torch.Tensor, k1: int, memory_budget_bytes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of every item's k-reciprocal expansion set, sorted by row then column."""
    count = neighbours.shape[0]
    full = min(k1 + 1, count)
    half = min(round(k1 / 2) + 1, count)
    # Per row: the (full x half x full) membership test dominates, in bytes.
    rows_per_chunk = max(1, memory_budget_bytes // (4 * full * half * full + 64 * full * half))
    reciprocal = _reciprocal_mask(neighbours, full, rows_per_chunk)
    half_reciprocal = _reciprocal_mask(neighbours, half, rows_per_chunk)
    rows, columns = [], []
    for start, members in _expansion_chunks(
        neighbours, reciprocal, half_reciprocal, full, half, rows_per_chunk
    ):
        keep = members < count
        keep[:, 1:] &= members[:, 1:] != members[:, :-1]
        local, position = keep.nonzero(as_tuple=True)
        rows.append(local + start)
        columns.append(members[local, position])
    return torch.cat(rows), torch.cat(columns)


def _expansion_chunks(
    neighbours: torch.Tensor,
    reciprocal: torch.Tensor,
    half_reciprocal: torch.Tensor,
    full: int,
    half: int,
    rows_per_chunk: int,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Per chunk of rows: every candidate member (sorted; ``count`` marks an empty slot)."""
    count = neighbours.shape[0]
    for start in range(0, count, rows_per_chunk):
        stop = min(start + rows_per_chunk, count)
        forward = neighbours[start:stop, :full]
        own_set = torch.where(reciprocal[start:stop], forward, count)  # R(i, k1)
        candidate_sets = neighbours[forward, :half]  # N(c, k1/2) of each c in N(i, k1)
        candidate_mask = half_reciprocal[forward]  # ... restricted to R(c, k1/2)
        inside = (candidate_sets.unsqueeze(-1) == own_set.view(-1, 1, 1, full)).any(dim=-1)
        overlap = (inside & candidate_mask).sum(dim=-1)
        size = candidate_mask.sum(dim=-1)
        accepted = reciprocal[start:stop] & (3 * overlap > 2 * size)
        added = torch.where(accepted.unsqueeze(-1) & candidate_mask, candidate_sets, count)
        yield start, torch.cat([own_set, added.flatten(1)], dim=1).sort(dim=1).values


def _local_query_expansion(
    vectors: SparseRows, neighbours: torch.Tensor, k2: int, memory_budget_bytes: int
) -> SparseRows:
    """Row i becomes the mean of the rows of its ``k2`` nearest items (k2 = 1: unchanged,
    as in the reference, even where a duplicate item ranks before i itself)."""
    if k2 == 1:
        return vectors
    count = vectors.num_rows
    k = min(k2, count)
    widest = max(1, int(vectors.row_lengths.max()))
    rows_per_chunk = max(1, memory_budget_bytes // (_BYTES_PER_ENTRY * k * widest))
    parts = []
    for start in range(0, count, rows_per_chunk):
        stop = min(start + rows_per_chunk, count)
        owner, columns, values = vectors.gather(neighbours[start:stop, :k].reshape(-1))
        part = SparseRows.from_triples(
            torch.div(owner, k, rounding_mode="floor"),
            columns,
            values,
            num_rows=stop - start,
            num_columns=count,
        )
        part.values.div_(k)
        parts.append(part)
    return SparseRows.concatenate(parts)
