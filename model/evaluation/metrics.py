"""Market-1501-protocol retrieval metrics (mAP, CMC, mINP), computed in bounded memory.

Protocol, per query:

* gallery items with the query's pid *and* camera are removed ("junk"): finding the
  same person in the same camera is trivial and says nothing about re-identification;
* the remaining gallery items with the query's pid are its positives; a query left with
  none is skipped (``num_valid_query`` counts the rest);
* AP is non-interpolated: the mean, over positives, of the precision at each positive's
  rank; CMC is clipped (``cmc[k] = 1`` when the first positive is within rank ``k + 1``);
  INP (Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook",
  2021) is ``num_positives / rank_of_the_last_positive``, i.e. how much of the list a
  user must inspect to find every match.

Conventions the reference scripts leave implicit, made explicit here:

* Ties in distance are broken by gallery index (the result of a *stable* argsort),
  so the metrics are a deterministic function of the inputs.
* ``cmc`` always has ``max_rank`` entries; ranks beyond the (junk-free) gallery simply
  repeat the last attainable value instead of being truncated.
* Distances are float32 and clamped at zero: cosine distance ``max(0, 1 - cos)`` and
  squared Euclidean distance ``max(0, |q|^2 + |g|^2 - 2 q.g)`` (the square root is
  monotone, so it cannot change the ranking; like the reference scripts, it is skipped).

Why it is not the textbook argsort: sorting every row costs O(G log G) per query and
dominates the run time. Only the ranks of the few gallery items that share the query's
pid are needed, so each chunk turns distances into exact int64 sort keys (float bits
plus gallery index), sorts just those relevant keys, places every gallery key among them
with ``searchsorted`` (O(G log R)) and counts per bucket. The result is the same ranking
a stable argsort would produce, at a fraction of the cost (docs/benchmarks.md). Queries
are processed in chunks so memory stays bounded even for MSMT17-sized sets (11,659 x
82,161).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from model.evaluation.distances import METRICS, Metric, distance_function, sort_keys
from model.evaluation.query_expansion import average_query_expansion
from model.evaluation.reranking import KReciprocalSettings, k_reciprocal_distance_chunks

ArrayLike = np.ndarray | torch.Tensor

DEFAULT_MAX_RANK = 50
# Peak working memory per chunk, in bytes per (query, gallery) pair: the float32
# distance (4), the int64 key (8) and the int32 bucket of every key (4); and per
# (query, same-pid gallery item) slot: its key, sort order, rank and flags (~40).
_BYTES_PER_PAIR = 16
_BYTES_PER_SLOT = 40
DEFAULT_MEMORY_BUDGET_BYTES = 512 * 1024**2
_INT64_MAX = torch.iinfo(torch.int64).max
_INTEGER_DTYPES = frozenset(
    {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32}
)


@dataclass(frozen=True)
class ReIDMetrics:
    """Retrieval quality of an embedding under the Market-1501 protocol (all fractions)."""

    mAP: float
    mINP: float
    rank1: float
    rank5: float
    rank10: float
    cmc: list[float]
    num_query: int
    num_valid_query: int
    num_gallery: int

    def to_dict(self) -> dict[str, float | int | list[float]]:
        return asdict(self)


def compute_reid_metrics(
    query_features: ArrayLike,
    gallery_features: ArrayLike,
    query_pids: ArrayLike,
    gallery_pids: ArrayLike,
    query_camids: ArrayLike,
    gallery_camids: ArrayLike,
    *,
    metric: Metric = "cosine",
    max_rank: int = DEFAULT_MAX_RANK,
    chunk_size: int | None = None,
    rerank: KReciprocalSettings | None = None,
    query_expansion: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
) -> ReIDMetrics:
    """Evaluate query-vs-gallery retrieval; see the module docstring for the protocol.

    Features may be numpy arrays or torch tensors, normalised or not (cosine normalises
    them itself). Work happens on the query features' device, so CUDA tensors are
    evaluated on the GPU. ``chunk_size`` is the number of queries ranked at once; by
    default it is chosen so one chunk needs about ``memory_budget_bytes``.

    ``query_expansion`` (K) first replaces each query by its average with its K nearest
    gallery items (model/evaluation/query_expansion.py); ``rerank`` then ranks by the
    k-reciprocal re-ranked distance (model/evaluation/reranking.py) instead of the plain
    one. Both stay within ``memory_budget_bytes`` for their dense working sets.

    Raises ``ValueError`` for malformed inputs and when no query has a cross-camera
    positive (the metrics would be undefined).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    _check_positive_int("max_rank", max_rank)
    _check_positive_int("memory_budget_bytes", memory_budget_bytes)
    if chunk_size is not None:
        _check_positive_int("chunk_size", chunk_size)
    if rerank is not None and not isinstance(rerank, KReciprocalSettings):
        raise ValueError(f"rerank must be KReciprocalSettings or None, got {rerank!r}")

    device = query_features.device if isinstance(query_features, torch.Tensor) else None
    query = _features(query_features, "query_features", device)
    gallery = _features(gallery_features, "gallery_features", query.device)
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query and gallery feature dimensions differ: {query.shape[1]} vs {gallery.shape[1]}"
        )
    num_query, num_gallery = query.shape[0], gallery.shape[0]
    q_pids = _id_vector(query_pids, "query_pids", num_query, query.device)
    g_pids = _id_vector(gallery_pids, "gallery_pids", num_gallery, query.device)
    q_cams = _id_vector(query_camids, "query_camids", num_query, query.device)
    g_cams = _id_vector(gallery_camids, "gallery_camids", num_gallery, query.device)

    if query_expansion is not None:
        query = average_query_expansion(
            query, gallery, query_expansion, metric=metric, memory_budget_bytes=memory_budget_bytes
        )
    chunks: Iterable[torch.Tensor]
    if rerank is None:
        chunk_size = chunk_size or default_chunk_size(
            num_gallery, _SamePidIndex(g_pids).largest_group, memory_budget_bytes
        )
        distances_to = distance_function(metric, query, gallery)
        chunks = (
            distances_to(start, min(start + chunk_size, num_query))
            for start in range(0, num_query, chunk_size)
        )
    else:
        chunks = k_reciprocal_distance_chunks(
            query,
            gallery,
            rerank,
            metric=metric,
            memory_budget_bytes=memory_budget_bytes,
            chunk_size=chunk_size,
        )
    return score_distance_chunks(chunks, q_pids, g_pids, q_cams, g_cams, max_rank=max_rank)


def score_distance_chunks(
    chunks: Iterable[torch.Tensor],
    query_pids: ArrayLike,
    gallery_pids: ArrayLike,
    query_camids: ArrayLike,
    gallery_camids: ArrayLike,
    *,
    max_rank: int = DEFAULT_MAX_RANK,
) -> ReIDMetrics:
    """The metrics of distances computed elsewhere (re-ranked, say), one chunk at a time.

    ``chunks`` yields float32 (queries, gallery) distance blocks for consecutive queries,
    in order; each is consumed (its storage reused) and may be dropped once scored, so a
    producer that yields bounded chunks keeps the whole evaluation bounded.
    """
    _check_positive_int("max_rank", max_rank)
    q_pids = _id_vector(query_pids, "query_pids", len(query_pids), None)
    g_pids = _id_vector(gallery_pids, "gallery_pids", len(gallery_pids), None)
    q_cams = _id_vector(query_camids, "query_camids", len(q_pids), None)
    g_cams = _id_vector(gallery_camids, "gallery_camids", len(g_pids), None)
    num_query, num_gallery = len(q_pids), len(g_pids)
    same_pid: _SamePidIndex | None = None
    first_ranks, precisions, inps = [], [], []
    start = 0
    for distances in chunks:
        if distances.ndim != 2 or distances.shape[1] != num_gallery:
            raise ValueError(
                f"a distance chunk must have shape (queries, {num_gallery}), "
                f"got {tuple(distances.shape)}"
            )
        if distances.dtype != torch.float32:
            raise ValueError(f"distance chunks must be float32, got {distances.dtype}")
        if same_pid is None:  # on the chunks' device, which the first one tells
            q_pids, g_pids, q_cams, g_cams = (
                ids.to(distances.device) for ids in (q_pids, g_pids, q_cams, g_cams)
            )
            same_pid = _SamePidIndex(g_pids)
            gallery_index = torch.arange(num_gallery, device=distances.device)
        stop = start + distances.shape[0]
        if stop > num_query:
            raise ValueError(f"the distance chunks cover more than the {num_query} queries")
        keys = sort_keys(distances, gallery_index)
        rows, cols = same_pid.pairs(q_pids[start:stop])
        first, ap, inp = _rank_positives(
            keys, rows, cols, q_cams[start:stop], g_cams, width=same_pid.largest_group
        )
        first_ranks.append(first)
        precisions.append(ap)
        inps.append(inp)
        start = stop
    if start != num_query:
        raise ValueError(f"the distance chunks cover {start} of the {num_query} queries")
    return _summarise(
        torch.cat(first_ranks).cpu(),
        torch.cat(precisions).cpu(),
        torch.cat(inps).cpu(),
        max_rank=max_rank,
        num_gallery=num_gallery,
    )


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _summarise(
    first_rank: torch.Tensor,
    average_precision: torch.Tensor,
    inverse_negative_penalty: torch.Tensor,
    *,
    max_rank: int,
    num_gallery: int,
) -> ReIDMetrics:
    """Average the per-query results over the queries that have a positive (rank > 0)."""
    valid = first_rank > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(
            "no query has a positive in the gallery under another camera; "
            "mAP/CMC/mINP are undefined"
        )
    first_rank = first_rank[valid]
    hits = torch.bincount(first_rank.clamp_max(max_rank + 1), minlength=max_rank + 2)
    return ReIDMetrics(
        mAP=float(average_precision[valid].mean()),
        mINP=float(inverse_negative_penalty[valid].mean()),
        rank1=_fraction_within(first_rank, 1),
        rank5=_fraction_within(first_rank, 5),
        rank10=_fraction_within(first_rank, 10),
        cmc=(hits.cumsum(0)[1 : max_rank + 1].double() / num_valid).tolist(),
        num_query=len(valid),
        num_valid_query=num_valid,
        num_gallery=num_gallery,
    )


def default_chunk_size(
    num_gallery: int,
    largest_identity: int = 0,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
) -> int:
    """Queries per chunk so that one chunk's working set is about the memory budget.

    ``largest_identity`` (the most gallery items sharing one pid) matters only for
    degenerate galleries where one identity covers a large share of the items.
    """
    per_query = _BYTES_PER_PAIR * num_gallery + _BYTES_PER_SLOT * largest_identity
    return max(1, memory_budget_bytes // per_query)


def _fraction_within(first_rank: torch.Tensor, k: int) -> float:
    return float((first_rank <= k).double().mean())


def _features(values: ArrayLike, name: str, device: torch.device | None) -> torch.Tensor:
    tensor = torch.as_tensor(values, device=device)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(tensor.shape)}")
    if not (tensor.is_floating_point() or tensor.dtype in _INTEGER_DTYPES):
        raise ValueError(f"{name} must be numeric, got {tensor.dtype}")
    tensor = tensor.to(torch.float32)
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def _id_vector(
    values: ArrayLike, name: str, length: int, device: torch.device | None
) -> torch.Tensor:
    """One integer id (pid or camid) per feature row, as int64 on ``device``."""
    tensor = torch.as_tensor(values, device=device)
    if tensor.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(tensor.shape)}")
    if tensor.dtype not in _INTEGER_DTYPES:
        raise ValueError(f"{name} must hold integers, got {tensor.dtype}")
    if tensor.shape[0] != length:
        raise ValueError(f"{name} has {tensor.shape[0]} entries but the features have {length}")
    return tensor.to(torch.int64)


class _SamePidIndex:
    """Finds, for a chunk of queries, every gallery item sharing the query's pid.

    Grouping the gallery by pid once makes this proportional to the number of such
    pairs, instead of comparing every query with every gallery item.
    """

    def __init__(self, gallery_pids: torch.Tensor) -> None:
        self._pids, self._order = torch.sort(gallery_pids, stable=True)
        _, counts = torch.unique_consecutive(self._pids, return_counts=True)
        self.largest_group = int(counts.max())

    def pairs(self, query_pids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row in chunk, gallery index) of each same-pid pair, grouped by row."""
        begin = torch.searchsorted(self._pids, query_pids, side="left")
        counts = torch.searchsorted(self._pids, query_pids, side="right") - begin
        rows = torch.repeat_interleave(torch.arange(len(query_pids), device=counts.device), counts)
        offsets = torch.arange(len(rows), device=counts.device) - (counts.cumsum(0) - counts)[rows]
        return rows, self._order[begin[rows] + offsets]


def _rank_positives(
    keys: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    q_cams: torch.Tensor,
    g_cams: torch.Tensor,
    width: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per query of the chunk: first-positive rank (0 if none), AP and INP.

    ``rows``/``cols`` are the chunk's same-pid (query row, gallery index) pairs, grouped
    by row. Ranks are 1-based positions in the gallery after junk removal. ``width`` is the
    largest same-pid group in the whole gallery, not in this chunk: a fixed row width keeps
    each query's floating-point sums identical whatever the chunk size.
    """
    num_chunk, num_gallery = keys.shape
    device = keys.device
    counts = torch.bincount(rows, minlength=num_chunk)
    if rows.numel() == 0:
        zeros = torch.zeros(num_chunk, dtype=torch.float64, device=device)
        return torch.zeros(num_chunk, dtype=torch.int64, device=device), zeros, zeros

    # Pad each query's same-pid items into one row of `width` slots; padding keys sort last.
    slot = torch.arange(rows.numel(), device=device) - (counts.cumsum(0) - counts)[rows]
    relevant = torch.full((num_chunk, width), _INT64_MAX, dtype=torch.int64, device=device)
    relevant[rows, slot] = keys[rows, cols]
    junk = torch.zeros((num_chunk, width), dtype=torch.bool, device=device)
    junk[rows, slot] = g_cams[cols] == q_cams[rows]
    relevant, order = torch.sort(relevant, dim=1)
    junk = torch.gather(junk, 1, order)
    real = torch.arange(width, device=device).unsqueeze(0) < counts.unsqueeze(1)

    # bucket[k] = how many relevant items rank before gallery item k; the number of gallery
    # items in buckets 0..r is then the 1-based rank of the r-th relevant item.
    bucket = torch.searchsorted(relevant, keys, out_int32=True)
    offsets = torch.arange(num_chunk, dtype=torch.int32, device=device) * (width + 1)
    bucket.add_(offsets.unsqueeze(1))
    histogram = torch.bincount(bucket.view(-1), minlength=num_chunk * (width + 1))
    rank = histogram.view(num_chunk, width + 1).cumsum(1)[:, :width]
    del bucket, histogram

    junk_before = junk.cumsum(1) - junk.long()
    rank = rank - junk_before
    positive = real & ~junk
    num_positive = positive.sum(1)
    ordinal = positive.cumsum(1)
    precision = torch.where(positive, ordinal.double() / rank.double(), 0.0)
    ap = precision.sum(1) / num_positive.clamp_min(1)
    first = torch.where(positive, rank, num_gallery + 1).min(1).values
    first = torch.where(num_positive > 0, first, 0)
    last = torch.where(positive, rank, 0).max(1).values
    inp = num_positive.double() / last.clamp_min(1).double()
    return first, ap, inp
