"""Open-set identification: is the probe someone in the gallery, and if so, who?

Closed-set metrics (CMC, mAP) assume every probe is enrolled. A deployed gallery
answers probes of people it has never seen, so here each probe ends in a decision:
the best identity's score ``>= T`` is a ``match`` with that identity, anything else is
``unknown``. Words, as in NIST's 1:N face evaluations (FRVT/FRTE, NISTIR 8271):

* a **mated** probe's identity is in the gallery; a **non-mated** one's is not;
* **FPIR(T)** is the fraction of non-mated probes decided ``match``;
* **FNIR(T)** is the fraction of mated probes *not* matched with their own identity
  (a mated probe whose top identity is wrong but above ``T`` is a miss too);
* **DIR at rank 1** (T) is ``1 - FNIR(T)``.

An identity's score is the best (max) cosine similarity over its gallery entries:
exactly how ``POST /query`` ranks identities, so thresholds measured here mean the
same thing in the service.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = np.ndarray | torch.Tensor

FPIR_TARGETS: tuple[float, ...] = (0.1, 0.01, 0.001)
DEFAULT_WITHHELD_FRACTION = 0.5
# (query, gallery entry) similarities held at once: 4 bytes each, so about 256 MiB.
_PAIRS_PER_CHUNK = 64 * 1024**2


@dataclass(frozen=True)
class IdentityScores:
    """Probe-by-identity scores: ``scores[q, i]`` = best similarity of probe q to ``identities[i]``.

    ``-inf`` marks an identity with no usable entry for that probe (all of its entries
    were the probe's own camera view, see `identity_scores`).
    """

    scores: np.ndarray  # (Q, N) float32
    identities: np.ndarray  # (N,) int64, sorted


def identity_scores(
    query_features: ArrayLike,
    gallery_features: ArrayLike,
    gallery_pids: ArrayLike,
    *,
    query_pids: ArrayLike | None = None,
    query_camids: ArrayLike | None = None,
    gallery_camids: ArrayLike | None = None,
    chunk_size: int | None = None,
) -> IdentityScores:
    """Each probe's score against each gallery identity: max cosine over its entries.

    Memory is bounded: probes are processed ``chunk_size`` at a time (by default so that
    one chunk's probe-by-entry similarities take about 256 MiB), and only the reduced
    probe-by-identity matrix is kept, which is far smaller than probe-by-entry.

    With all three of ``query_pids``, ``query_camids`` and ``gallery_camids`` the
    Market-1501 junk rule applies: entries showing the probe's identity in the probe's
    camera are ignored, since finding a person in the very camera view they were just
    seen in is near-duplicate retrieval, not identification.
    """
    query = _features(query_features, "query_features")
    gallery = _features(gallery_features, "gallery_features")
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query and gallery feature dimensions differ: {query.shape[1]} vs {gallery.shape[1]}"
        )
    g_pids = _ids(gallery_pids, "gallery_pids", gallery.shape[0])
    if gallery.shape[0] == 0:
        raise ValueError("the gallery is empty: there is no identity to score against")
    junk_rule = (query_pids, query_camids, gallery_camids)
    if any(v is not None for v in junk_rule) and not all(v is not None for v in junk_rule):
        raise ValueError("the same-camera rule needs query_pids, query_camids and gallery_camids")
    identities, columns = np.unique(g_pids, return_inverse=True)
    column_index = torch.from_numpy(columns.astype(np.int64))
    if chunk_size is None:
        chunk_size = max(1, _PAIRS_PER_CHUNK // max(1, gallery.shape[0]))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    same_view: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    if query_pids is not None:
        assert query_camids is not None and gallery_camids is not None
        same_view = (
            torch.from_numpy(_ids(query_pids, "query_pids", query.shape[0])),
            torch.from_numpy(_ids(query_camids, "query_camids", query.shape[0])),
            torch.from_numpy(g_pids),
            torch.from_numpy(_ids(gallery_camids, "gallery_camids", gallery.shape[0])),
        )
    out = torch.full((query.shape[0], len(identities)), float("-inf"), dtype=torch.float32)
    for start in range(0, query.shape[0], chunk_size):
        stop = min(start + chunk_size, query.shape[0])
        similarity = query[start:stop] @ gallery.T
        if same_view is not None:
            q_pid, q_cam, g_pid, g_cam = same_view
            junk = (q_pid[start:stop, None] == g_pid[None, :]) & (
                q_cam[start:stop, None] == g_cam[None, :]
            )
            similarity = similarity.masked_fill(junk, float("-inf"))
        index = column_index.expand(stop - start, -1)
        out[start:stop].scatter_reduce_(1, index, similarity, reduce="amax", include_self=True)
    return IdentityScores(scores=out.numpy(), identities=identities)


def _features(values: ArrayLike, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(values).detach().cpu()
    if tensor.ndim != 2 or not tensor.is_floating_point():
        raise ValueError(
            f"{name} must be a 2-D float array (N, D), got shape {tuple(tensor.shape)}"
        )
    tensor = tensor.float()
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return F.normalize(tensor, dim=1)


def _ids(values: ArrayLike, name: str, length: int) -> np.ndarray:
    array = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise ValueError(f"{name} must be a 1-D integer array, got shape {array.shape}")
    if len(array) != length:
        raise ValueError(f"{name} has {len(array)} entries for {length} feature rows")
    return array.astype(np.int64)


def withhold_identities(
    identities: ArrayLike, fraction: float = DEFAULT_WITHHELD_FRACTION, *, seed: int = 0
) -> np.ndarray:
    """Pick the identities to leave out of the gallery, so their probes are non-mated.

    The choice is a seeded permutation, so one seed gives one split. At least one
    identity is withheld and at least one stays enrolled: with fewer there would be no
    non-mated probe (FPIR undefined) or no gallery at all. Returns the withheld pids, sorted.
    """
    if isinstance(fraction, bool) or not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"the withheld fraction must be in (0, 1), got {fraction!r}")
    unique = np.unique(np.asarray(identities, dtype=np.int64))
    if len(unique) < 2:
        raise ValueError(
            f"open-set evaluation needs at least 2 identities (one enrolled, one withheld), "
            f"got {len(unique)}"
        )
    count = min(len(unique) - 1, max(1, round(fraction * len(unique))))
    order = np.random.default_rng(seed).permutation(len(unique))
    return np.sort(unique[order[:count]])


@dataclass(frozen=True)
class OpenSetScores:
    """What the decision rule needs from each probe, split by mated and non-mated.

    ``mated_scores`` is each mated probe's top identity score and ``mated_correct``
    whether that top identity is its own; ``nonmated_scores`` is each non-mated probe's
    top identity score.
    """

    mated_scores: np.ndarray
    mated_correct: np.ndarray
    nonmated_scores: np.ndarray
    gallery_identities: int

    def fpir(self, threshold: float | np.ndarray) -> np.ndarray:
        """Fraction of non-mated probes whose top score reaches ``threshold``."""
        return _fraction_at_least(self.nonmated_scores, threshold)

    def fnir(self, threshold: float | np.ndarray) -> np.ndarray:
        """Fraction of mated probes not matched to their own identity at ``threshold``."""
        hits = np.sort(self.mated_scores[self.mated_correct])
        count = len(hits) - np.searchsorted(hits, np.asarray(threshold), side="left")
        return 1.0 - count / len(self.mated_scores)


def _fraction_at_least(values: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    ordered = np.sort(values)
    return (len(ordered) - np.searchsorted(ordered, np.asarray(threshold), side="left")) / len(
        ordered
    )


def entries_per_enrolled_identity(gallery_pids: ArrayLike, withheld: ArrayLike) -> float:
    """Mean entries per identity left enrolled: with ``gallery_identities``, the gallery
    a calibrated threshold is asked for (``Calibration.threshold_for``)."""
    pids = np.asarray(gallery_pids)
    enrolled = pids[~np.isin(pids, np.asarray(withheld))]
    if not len(enrolled):
        raise ValueError("every gallery identity is withheld: nothing is left enrolled")
    return len(enrolled) / len(np.unique(enrolled))


def split_open_set(
    scores: IdentityScores, query_pids: ArrayLike, withheld: ArrayLike
) -> OpenSetScores:
    """Drop the withheld identities from the gallery and score every probe against the rest.

    A probe whose identity is enrolled is mated; one whose identity is withheld, or was
    never in the gallery, is non-mated. A mated probe none of whose own entries is usable
    (all in its own camera) is left out, like a Market-1501 query without a positive.
    """
    pids = _ids(query_pids, "query_pids", scores.scores.shape[0])
    withheld_ids = np.asarray(withheld, dtype=np.int64)
    enrolled = ~np.isin(scores.identities, withheld_ids)
    if not enrolled.any():
        raise ValueError("every gallery identity is withheld: nothing is left enrolled")
    gallery = scores.scores[:, enrolled]
    gallery_ids = scores.identities[enrolled]
    top = gallery.argmax(axis=1)
    top_score = gallery[np.arange(len(top)), top]
    column = np.searchsorted(gallery_ids, pids).clip(0, len(gallery_ids) - 1)
    mated = gallery_ids[column] == pids
    usable = mated & np.isfinite(gallery[np.arange(len(pids)), column])
    nonmated = ~mated
    if not nonmated.any():
        raise ValueError(
            "no probe is non-mated (every probe's identity is enrolled), so FPIR is undefined; "
            "withhold some identities"
        )
    if not usable.any():
        raise ValueError(
            "no probe is mated (no probe's identity is enrolled), so FNIR is undefined"
        )
    return OpenSetScores(
        mated_scores=top_score[usable].astype(np.float64),
        mated_correct=(gallery_ids[top] == pids)[usable],
        nonmated_scores=top_score[nonmated].astype(np.float64),
        gallery_identities=int(enrolled.sum()),
    )


@dataclass(frozen=True)
class OperatingPoint:
    """The threshold meeting one FPIR target, and what it costs in misses.

    ``threshold`` is None when there are too few non-mated probes to resolve the
    target (fewer than ``1 / target``): reporting FNIR there would be a guess.
    """

    target_fpir: float
    threshold: float | None
    fpir: float | None
    fnir: float | None

    @property
    def dir_rank1(self) -> float | None:
        return None if self.fnir is None else 1.0 - self.fnir

    def to_dict(self) -> dict[str, float | None]:
        return {
            "target_fpir": self.target_fpir,
            "threshold": self.threshold,
            "fpir": self.fpir,
            "fnir": self.fnir,
            "dir_rank1": self.dir_rank1,
        }


def operating_point(scores: OpenSetScores, target_fpir: float) -> OperatingPoint:
    """The lowest threshold whose observed FPIR is at most ``target_fpir``, and its FNIR.

    Observed FPIR only changes at non-mated scores, so the threshold sits just above the
    ``k``-th highest non-mated score, ``k = floor(target * count) + 1``: exactly
    ``k - 1`` non-mated probes then reach it.
    """
    if not 0.0 < target_fpir < 1.0:
        raise ValueError(f"target FPIR must be in (0, 1), got {target_fpir!r}")
    count = len(scores.nonmated_scores)
    allowed = int(np.floor(target_fpir * count + 1e-9))
    if allowed < 1:
        return OperatingPoint(target_fpir, None, None, None)
    ordered = np.sort(scores.nonmated_scores)[::-1]
    threshold = float(np.nextafter(ordered[allowed], np.inf)) if allowed < count else -np.inf
    return OperatingPoint(
        target_fpir=target_fpir,
        threshold=threshold,
        fpir=float(scores.fpir(threshold)),
        fnir=float(scores.fnir(threshold)),
    )


@dataclass(frozen=True)
class DetCurve:
    """FPIR and FNIR at every threshold where either changes (ascending thresholds)."""

    thresholds: np.ndarray
    fpir: np.ndarray
    fnir: np.ndarray


def det_curve(scores: OpenSetScores) -> DetCurve:
    """The decision error trade-off: one point per distinct probe score."""
    thresholds = np.unique(np.concatenate([scores.mated_scores, scores.nonmated_scores]))
    return DetCurve(thresholds, scores.fpir(thresholds), scores.fnir(thresholds))


def open_set_summary(
    scores: OpenSetScores, targets: tuple[float, ...] = FPIR_TARGETS
) -> dict[str, object]:
    """The NIST-style report: FNIR and DIR@rank1 at each FPIR target, with the counts."""
    return {
        "gallery_identities": scores.gallery_identities,
        "mated_probes": len(scores.mated_scores),
        "nonmated_probes": len(scores.nonmated_scores),
        "closed_set_rank1": float(scores.mated_correct.mean()),
        "operating_points": [operating_point(scores, target).to_dict() for target in targets],
    }
