"""The evaluator's distances and exact tie-breaking sort keys, shared by every ranking step.

Metrics, re-ranking and query expansion must rank the same pairs the same way, or a
post-processing step would be scored under other conventions than the plain evaluation.
So the distance formulas and the "ties go to the lower gallery index" rule live here once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

Metric = Literal["cosine", "euclidean"]
METRICS: tuple[Metric, ...] = ("cosine", "euclidean")
_LOW_32_BITS = 0xFFFFFFFF


def distance_function(
    metric: Metric, rows: torch.Tensor, columns: torch.Tensor
) -> Callable[[int, int], torch.Tensor]:
    """Returns f(start, stop): float32 distances of those rows to every column vector.

    Cosine distance ``1 - cos`` or squared Euclidean distance; values may carry tiny
    negative rounding residues, which ``sort_keys`` (and callers that need values) clamp.
    """
    if metric == "cosine":
        rows = torch.nn.functional.normalize(rows, dim=1)
        columns_t = torch.nn.functional.normalize(columns, dim=1).t()
        return lambda start, stop: torch.mm(rows[start:stop], columns_t).neg_().add_(1.0)

    row_norms = rows.square().sum(dim=1, keepdim=True)
    column_norms = columns.square().sum(dim=1).unsqueeze(0)
    columns_t = columns.t()

    def squared_euclidean(start: int, stop: int) -> torch.Tensor:
        distances = torch.addmm(column_norms, rows[start:stop], columns_t, alpha=-2.0)
        return distances.add_(row_norms[start:stop])

    return squared_euclidean


def sort_keys(distances: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Map float32 distances to int64 keys ordered like (max(0, distance), column index).

    Non-negative floats order like their int32 bit patterns, and clamping those bits at
    zero sends every negative rounding residue (and -0.0) to +0.0; the column index in
    the low 32 bits then breaks ties exactly as a stable argsort would. Consumes
    ``distances`` (its storage is reused).
    """
    bits = distances.view(torch.int32).clamp_min_(0)
    return bits.to(torch.int64).bitwise_left_shift_(32).bitwise_or_(index)


def nearest_columns(distances: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of each row's ``k`` closest columns, closest first, ties to the lower index.

    The same order as the first ``k`` entries of a stable argsort of ``max(0, distances)``,
    found with ``topk`` on exact keys instead of sorting whole rows. Consumes ``distances``.
    """
    index = torch.arange(distances.shape[1], device=distances.device)
    keys = sort_keys(distances, index)
    nearest = torch.topk(keys, k, dim=1, largest=False, sorted=True).values
    return nearest.bitwise_and_(_LOW_32_BITS)


def pair_distances(
    metric: Metric,
    features: torch.Tensor,
    rows: torch.Tensor,
    columns: torch.Tensor,
    *,
    batch_size: int,
) -> torch.Tensor:
    """float32 distance, clamped at zero, of each (features[rows[p]], features[columns[p]]).

    For the few pairs a sparse step needs, instead of a whole row of distances: same
    formulas as ``distance_function``, evaluated ``batch_size`` pairs at a time so the
    gathered feature vectors stay within the caller's memory budget.
    """
    if metric == "cosine":
        features = torch.nn.functional.normalize(features, dim=1)
    norms = features.square().sum(dim=1)
    out = torch.empty(rows.shape[0], dtype=torch.float32, device=features.device)
    for start in range(0, rows.shape[0], batch_size):
        r, c = rows[start : start + batch_size], columns[start : start + batch_size]
        dot = torch.linalg.vecdot(features[r], features[c])
        if metric == "cosine":
            out[start : start + len(r)] = dot.neg_().add_(1.0)
        else:
            out[start : start + len(r)] = (norms[r] + norms[c]).sub_(dot.mul_(2.0))
    return out.clamp_min_(0.0)
