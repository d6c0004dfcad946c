"""Ranking identities for one embedding: each identity scores by its best entry.

FAISS gives nearest *entries*, best first; filters drop some of them, and one
person's entries crowd each other, so the search over-fetches and widens until
``top_k`` identities survive, the scores fall below ``min_score``, or the gallery
is exhausted. Each widening is a new search (a whole scan for a flat index), so
it widens by what the last one found: k grows by about the factor that would
have given ``top_k`` identities at the rate they appeared (at least x4, at most
x64), not a fixed x4 step. Candidates are
resolved against the database rows, so an entry deleted a moment ago is never
returned. An identity's best admitted entry is its first admitted neighbour in
that list, so its score, entry and camera come from the search itself: no
identity's stored embeddings are read back, and a query costs the same whether
a person has 5 entries or 5,000. ``matches`` counts the identity's admitted
neighbours among those examined (docs/service.md, Query semantics).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from app.gallery.entry_fields import as_utc
from app.gallery.errors import InvalidQuery
from app.gallery.live_index import LiveIndex
from app.gallery.store import EntryLabel, EntryStore
from app.telemetry import Telemetry

INITIAL_NEIGHBOURS = 64
NEIGHBOUR_FACTOR = 8
MIN_WIDEN_FACTOR = 4
MAX_WIDEN_FACTOR = 64


@dataclass(frozen=True)
class QueryFilters:
    camera: str | None = None
    exclude_same_camera: bool = False
    min_score: float | None = None
    captured_after: datetime | None = None
    captured_before: datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        camera: str | None,
        exclude_same_camera: bool,
        min_score: float | None,
        captured_after: datetime | None,
        captured_before: datetime | None,
    ) -> QueryFilters:
        """Filters from a client's (already type-checked) fields; contradictions raise."""
        if exclude_same_camera and camera is None:
            raise InvalidQuery(
                "exclude_same_camera needs the query's camera: send the camera field too",
                {"field": "camera"},
                code="camera_required",
            )
        after = as_utc(captured_after, "captured_after")
        before = as_utc(captured_before, "captured_before")
        if after is not None and before is not None and after > before:
            raise InvalidQuery(
                "captured_after is later than captured_before",
                {"field": "captured_after"},
                code="invalid_time_window",
            )
        return cls(camera, exclude_same_camera, min_score, after, before)

    @property
    def has_time_window(self) -> bool:
        return self.captured_after is not None or self.captured_before is not None

    def admits(self, label: EntryLabel) -> bool:
        """Camera and time-window rules (``min_score`` is applied to scores separately)."""
        if self.exclude_same_camera and label.camera is not None and label.camera == self.camera:
            return False
        if self.has_time_window:
            if label.captured_at is None:
                return False
            if self.captured_after is not None and label.captured_at < self.captured_after:
                return False
            if self.captured_before is not None and label.captured_at > self.captured_before:
                return False
        return True


@dataclass(frozen=True)
class IdentityMatch:
    """One identity's answer: its best admitted entry, and its admitted neighbours."""

    identity: str
    score: float
    entry_id: int
    camera: str | None
    matches: int


class GallerySearch:
    def __init__(self, *, store: EntryStore, live: LiveIndex, telemetry: Telemetry) -> None:
        self._store = store
        self._live = live
        self._telemetry = telemetry

    def rank(self, query: np.ndarray, top_k: int, filters: QueryFilters) -> list[IdentityMatch]:
        """The ``top_k`` identities for one unit-vector embedding, best first."""
        started = time.perf_counter()
        index = self._live.current
        total = index.count
        candidates: dict[int, EntryLabel] = {}
        ranked: list[IdentityMatch] = []
        k = min(total, max(INITIAL_NEIGHBOURS, top_k * NEIGHBOUR_FACTOR))
        while k > 0:
            scores, ids = index.search(query, k)
            unseen = [int(i) for i in ids if int(i) not in candidates]
            candidates.update(self._store.labels(unseen))
            ranked = _tally(scores, ids, candidates, filters)
            exhausted = len(ids) < k or k >= total
            below_floor = (
                filters.min_score is not None and len(scores) and scores[-1] < filters.min_score
            )
            if len(ranked) >= top_k or exhausted or below_floor:
                break
            k = min(total, k * _widen_factor(len(ranked), top_k))
        self._telemetry.search_seconds.observe(time.perf_counter() - started)
        return ranked[:top_k]


def _widen_factor(found: int, top_k: int) -> int:
    """How much more to fetch when ``found`` identities of ``top_k`` survived: twice the
    shortfall's ratio, so identities that appeared at a steady rate are all reached by the
    next search (a gallery of 1,333 entries per identity needed five x4 scans before)."""
    wanted = -(-2 * top_k // max(found, 1))  # ceil(2 * top_k / found)
    return min(MAX_WIDEN_FACTOR, max(MIN_WIDEN_FACTOR, wanted))


def _tally(
    scores: np.ndarray,
    ids: np.ndarray,
    candidates: dict[int, EntryLabel],
    filters: QueryFilters,
) -> list[IdentityMatch]:
    """Every identity among the admitted neighbours, by its first (best) one, best first.

    The neighbours come best first, so an identity's first admitted neighbour is its
    best admitted entry of all those the index holds (exactly so for a flat index;
    IVF and HNSW score what they found exactly, but may miss entries). Each further
    admitted neighbour of the identity adds one to its ``matches``.
    """
    best: dict[str, tuple[float, EntryLabel]] = {}
    counts: dict[str, int] = {}
    for score, entry_id in zip(scores.tolist(), ids.tolist(), strict=True):
        if filters.min_score is not None and score < filters.min_score:
            break
        label = candidates.get(entry_id)
        if label is None or not filters.admits(label):  # deleted since the search, or filtered
            continue
        counts[label.identity] = counts.get(label.identity, 0) + 1
        best.setdefault(label.identity, (score, label))
    ranked = [
        IdentityMatch(identity, score, label.entry_id, label.camera, counts[identity])
        for identity, (score, label) in best.items()
    ]
    return sorted(ranked, key=lambda match: (-match.score, match.entry_id))
