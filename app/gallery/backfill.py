"""Re-embedding stored crops with the loaded model, in the background of a running replica.

A replica started with a new model finds entries without its embedding: the whole
gallery after a model change, or single entries enrolled meanwhile through replicas
of the other version during an upgrade. It embeds their stored crops itself, a
claimed batch at a time (``EmbeddingSlots.fill``), through the same request batcher
as live traffic, and the change log brings the results into every replica's index.
``python -m app.reembed`` runs the same batches from the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import numpy as np
import torch

from app.gallery.crops import CropStore
from app.gallery.embedding_slots import EmbedCrops, EmbeddingSlots, StoredCrop
from app.gallery.versions import ModelVersions
from app.inference.decoding import ImageDecoder
from model.config import InputSize
from model.preprocessing import ImageDecodeError, decode_image, preprocess

log = logging.getLogger(__name__)

BATCH = 32


def crop_embedder(
    crops: CropStore,
    embed: Callable[[torch.Tensor], np.ndarray],
    input_size: InputSize,
    max_pixels: int,
) -> EmbedCrops:
    """Embeds stored crops; a crop that is missing or does not decode is reported, not fatal."""

    def run(batch: Sequence[StoredCrop]) -> tuple[dict[int, np.ndarray], list[int]]:
        tensors, ready, unusable = [], [], []
        for item in batch:
            try:
                image = decode_image(crops.get(item.sha256), max_pixels=max_pixels)
            except (OSError, ImageDecodeError) as error:
                log.error("entry %d: crop unusable (%s)", item.entry_id, error)
                unusable.append(item.entry_id)
                continue
            tensors.append(preprocess(image, input_size))
            ready.append(item.entry_id)
        vectors = embed(torch.stack(tensors)) if tensors else []
        return dict(zip(ready, vectors, strict=True)), unusable

    return run


class Backfill:
    def __init__(
        self,
        slots: EmbeddingSlots,
        versions: ModelVersions,
        crops: CropStore,
        decoder: ImageDecoder,
        interval_s: float,
    ) -> None:
        self._slots = slots
        self._versions = versions
        self._crops = crops
        self._decoder = decoder
        self._interval_s = interval_s
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def run_pass(self, embed: EmbedCrops) -> tuple[int, list[int]]:
        """Fill every lacking entry (blocking); returns (written, unusable ids)."""
        written, unusable, after = 0, [], 0
        while (filled := self._slots.fill(embed, after_id=after, limit=BATCH)) is not None:
            written += filled.written
            unusable.extend(filled.unusable)
            after = filled.last_id
        self._versions.refresh()
        if written:
            log.info("re-embedded %d entries with model %s", written, self._slots.model_version)
        return written, unusable

    def wake(self) -> None:
        """Called from any thread when an entry without this model's embedding appears."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(
        self, embed_async: Callable[[torch.Tensor], Coroutine[Any, Any, np.ndarray]]
    ) -> None:
        """Pass after pass while entries lack this model's embedding; then wait for a wake-up
        (or the interval). ``embed_async`` is the request batcher's."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        loop = self._loop

        def embed(batch: torch.Tensor) -> np.ndarray:  # from the pass's worker thread
            return asyncio.run_coroutine_threadsafe(embed_async(batch), loop).result()

        embed_crops = crop_embedder(
            self._crops, embed, self._decoder.size, self._decoder.max_pixels
        )

        while True:
            # The census is kept current by start-up, the maintenance pass and each pass
            # here; a wake-up means the follower met an entry the census may not count yet.
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                if woken or self._versions.foreign:
                    await asyncio.to_thread(self.run_pass, embed_crops)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background re-embedding failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
