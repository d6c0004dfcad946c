"""Who is this? One query crop in: ranked identities, the open-set decision, the timings.

With a calibration in force, the effective gallery is counted in the database while
FAISS ranks, so the decision adds one indexed count, not a second round trip.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np

from app.gallery.decisions import UNCALIBRATED, Decision, OpenSetDecider
from app.gallery.expansion import expanded_query
from app.gallery.lifecycle import IndexLifecycle
from app.gallery.live_index import LiveIndex
from app.gallery.search import GallerySearch, IdentityMatch, QueryFilters
from app.gallery.store import EntryStore
from app.inference.batcher import DynamicBatcher
from app.inference.decoding import ImageDecoder, Upload


@dataclass(frozen=True)
class Timings:
    """Seconds per step; decoding counts from ``started`` (when the request arrived)."""

    decode_s: float
    embed_s: float
    search_s: float
    total_s: float


@dataclass(frozen=True)
class Identification:
    matches: list[IdentityMatch]
    decision: Decision
    model_version: str
    gallery_size: int
    timings: Timings


class Identifier:
    def __init__(
        self,
        *,
        store: EntryStore,
        search: GallerySearch,
        live: LiveIndex,
        lifecycle: IndexLifecycle,
        decoder: ImageDecoder,
        batcher: DynamicBatcher,
        decider: OpenSetDecider,
    ) -> None:
        self._store = store
        self._search = search
        self._decider = decider
        self._live = live
        self._lifecycle = lifecycle
        self._decoder = decoder
        self._batcher = batcher

    async def identify(
        self,
        upload: Upload,
        top_k: int,
        filters: QueryFilters,
        *,
        max_false_positive_rate: float,
        started: float,
        expansion: int = 0,
    ) -> Identification:
        """Decode, check the gallery was made by the loaded model, embed, rank, decide.

        ``max_false_positive_rate`` is the FPIR the decision's threshold keeps (in (0, 0.5],
        checked by the caller); ``started`` is the caller's ``time.perf_counter()`` at the
        request's arrival. With ``expansion`` (1 to `MAX_EXPANSION`) the results are those
        of the α-expanded query (`app.gallery.expansion`); the decision stays the plain
        query's, the one its calibration describes.
        """
        decoded = (await self._decoder.decode_all([upload]))[0]
        decoded_at = time.perf_counter()
        if self._lifecycle.versions.refusing:  # a thread only when a census will run
            await asyncio.to_thread(self._lifecycle.require_compatible)
        embedding = (await self._batcher.embed(decoded.tensor.unsqueeze(0)))[0]
        embedded_at = time.perf_counter()
        matches, decision = await self._rank_and_decide(
            embedding, top_k, filters, max_false_positive_rate
        )
        if expansion:
            matches = await asyncio.to_thread(
                self._expanded_ranking, embedding, matches, expansion, top_k, filters
            )
        finished = time.perf_counter()
        return Identification(
            matches=matches,
            decision=decision,
            model_version=self._lifecycle.versions.loaded,
            gallery_size=self._live.count,
            timings=Timings(
                decode_s=decoded_at - started,
                embed_s=embedded_at - decoded_at,
                search_s=finished - embedded_at,
                total_s=finished - started,
            ),
        )

    def _expanded_ranking(
        self,
        embedding: np.ndarray,
        matches: list[IdentityMatch],
        expansion: int,
        top_k: int,
        filters: QueryFilters,
    ) -> list[IdentityMatch]:
        query = expanded_query(embedding, matches, expansion, self._store)
        return matches if query is None else self._search.rank(query, top_k, filters)

    async def _rank_and_decide(
        self, embedding: np.ndarray, top_k: int, filters: QueryFilters, fpir: float
    ) -> tuple[list[IdentityMatch], Decision]:
        in_force = self._decider.in_force()
        if in_force is None:
            ranked = await asyncio.to_thread(self._search.rank, embedding, top_k, filters)
            return ranked, UNCALIBRATED
        matches, gallery = await asyncio.gather(
            asyncio.to_thread(self._search.rank, embedding, top_k, filters),
            asyncio.to_thread(self._decider.effective_gallery, filters),
        )
        decision = await asyncio.to_thread(
            self._decider.decide, embedding, matches, filters, in_force, fpir, gallery
        )
        return matches, decision
