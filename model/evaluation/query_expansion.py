"""Average query expansion (AQE): each query replaced by its mean with its K nearest gallery
items, in bounded memory.

Definition used here (AQE of Chum et al., ICCV 2007, without the weighting of alpha-QE):
the K nearest gallery items of query q are found with the evaluator's own distance and
tie-break (lower gallery index first). Then

* cosine: ``q' = normalise((n(q) + sum_k n(g_k)) / (K + 1))`` with ``n`` the L2
  normalisation, i.e. the normalised mean of the normalised vectors;
* squared Euclidean: ``q' = (q + sum_k g_k) / (K + 1)``, the plain mean; vector length is
  part of that metric, so re-normalising would move queries off the gallery's scale.

Only queries are expanded; the gallery is left as it is. Pulling a query towards the gallery
items it already ranks first makes their close relatives (other views of the same person)
rank higher too.
"""

from __future__ import annotations

import torch

from model.evaluation.distances import Metric, distance_function, nearest_columns

# Bytes per (query, gallery) pair while ranking (distance and key) and per gathered value.
_BYTES_PER_PAIR = 16
_BYTES_PER_GATHERED = 4


def average_query_expansion(
    query: torch.Tensor,
    gallery: torch.Tensor,
    k: int,
    *,
    metric: Metric,
    memory_budget_bytes: int,
) -> torch.Tensor:
    """The expanded float32 query features (same shape as ``query``)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"query expansion K must be a positive integer, got {k!r}")
    num_query, num_gallery = query.shape[0], gallery.shape[0]
    if k > num_gallery:
        raise ValueError(
            f"query expansion K={k} needs at least {k} gallery items, the gallery has {num_gallery}"
        )
    distances_to = distance_function(metric, query, gallery)
    if metric == "cosine":
        query = torch.nn.functional.normalize(query, dim=1)
        gallery = torch.nn.functional.normalize(gallery, dim=1)
    per_query = _BYTES_PER_PAIR * num_gallery + _BYTES_PER_GATHERED * k * query.shape[1]
    chunk_size = max(1, memory_budget_bytes // per_query)
    expanded = torch.empty_like(query)
    for start in range(0, num_query, chunk_size):
        stop = min(start + chunk_size, num_query)
        nearest = nearest_columns(distances_to(start, stop), k)
        total = gallery[nearest].sum(dim=1).add_(query[start:stop])
        expanded[start:stop] = total.div_(k + 1)
    if metric == "cosine":
        expanded = torch.nn.functional.normalize(expanded, dim=1)
    return expanded
