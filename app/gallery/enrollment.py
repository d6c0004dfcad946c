"""Enrollment: crops of one identity in, gallery entries out, all or nothing.

The order is what keeps the three stores consistent through a crash: the crop
file is written (fsync), the rows are committed, then the vectors are added to
the index, and only then does the caller hear back. An image is known by the
SHA-256 of its bytes: the same bytes again for the same identity return the
existing entry, under another identity they are refused (``DuplicateImage``).
Two requests racing with the same bytes are settled by the table's unique
constraint: the loser re-reads and answers as for a repeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from sqlalchemy.exc import IntegrityError

from app.db.models import GalleryEntry
from app.gallery.crops import CropStore
from app.gallery.entry_fields import EntryFields
from app.gallery.errors import CropNotStored, DuplicateImage, GalleryChanged
from app.gallery.lifecycle import IndexLifecycle
from app.gallery.live_index import LiveIndex
from app.gallery.store import EntryStore
from app.inference.batcher import DynamicBatcher
from app.inference.decoding import DecodedImage, ImageDecoder, Upload
from app.telemetry import Telemetry

_ATTEMPTS = 3


class Enrolled(NamedTuple):
    entry: GalleryEntry
    created: bool


class Enrollment:
    def __init__(
        self,
        *,
        store: EntryStore,
        live: LiveIndex,
        crops: CropStore,
        lifecycle: IndexLifecycle,
        decoder: ImageDecoder,
        batcher: DynamicBatcher,
        telemetry: Telemetry,
    ) -> None:
        self._store = store
        self._live = live
        self._crops = crops
        self._lifecycle = lifecycle
        self._decoder = decoder
        self._batcher = batcher
        self._telemetry = telemetry

    async def enroll(self, fields: EntryFields, uploads: Sequence[Upload]) -> list[Enrolled]:
        """Decode every file, embed the new ones with the loaded model, and store them.

        Returns one (entry, created) per file, in request order. The first bad
        file (in request order) fails the whole request and nothing is stored.
        """
        images = await self._decoder.decode_all(uploads)
        if self._lifecycle.versions.refusing:  # a thread only when a census will run
            await asyncio.to_thread(self._lifecycle.require_compatible)
        existing = await asyncio.to_thread(self.holders, fields.identity, images)
        fresh = list({i.sha256: i for i in images if i.sha256 not in existing}.values())
        embeddings: dict[str, np.ndarray] = {}
        if fresh:
            vectors = await self._batcher.embed(torch.stack([image.tensor for image in fresh]))
            embeddings = {image.sha256: v for image, v in zip(fresh, vectors, strict=True)}
        return await asyncio.to_thread(self._store_all, fields, images, embeddings)

    def holders(self, identity: str, images: Sequence[DecodedImage]) -> dict[str, GalleryEntry]:
        """Entries already holding these bytes; ``DuplicateImage`` if another identity does."""
        existing = self._store.holders(image.sha256 for image in images)
        for image in images:
            holder = existing.get(image.sha256)
            if holder is not None and holder.identity != identity:
                raise DuplicateImage(
                    f"file #{image.index + 1} ({image.filename!r}) is already enrolled as "
                    f"identity {holder.identity!r} (entry {holder.id}); the same image cannot "
                    "belong to two identities. Delete that entry first if it was wrong.",
                    {
                        "filename": image.filename,
                        "index": image.index,
                        "holder_identity": holder.identity,
                        "entry_id": holder.id,
                    },
                )
        return existing

    def _store_all(
        self,
        fields: EntryFields,
        images: Sequence[DecodedImage],
        embeddings: dict[str, np.ndarray],
    ) -> list[Enrolled]:
        written: list[str] = []
        try:
            for sha, image in {image.sha256: image for image in images}.items():
                if sha in embeddings and self._crops.put(sha, image.data):
                    written.append(sha)
            for _attempt in range(_ATTEMPTS):
                existing = self.holders(fields.identity, images)
                try:
                    created = self._insert(fields, images, embeddings, existing)
                except IntegrityError:
                    continue
                return _in_request_order(images, existing, created)
            raise GalleryChanged("the gallery changed while enrolling; retry the request")
        except OSError as error:
            self._forget_unreferenced(written)
            raise CropNotStored(
                f"the crop could not be stored in the data directory: {error.strerror or error}"
            ) from error
        except BaseException:
            self._forget_unreferenced(written)
            raise

    def _insert(
        self,
        fields: EntryFields,
        images: Sequence[DecodedImage],
        embeddings: dict[str, np.ndarray],
        existing: dict[str, GalleryEntry],
    ) -> dict[str, GalleryEntry]:
        pending: dict[str, GalleryEntry] = {}
        for image in images:
            if image.sha256 in existing or image.sha256 in pending:
                continue
            if image.sha256 not in embeddings:  # deleted since we found it
                raise GalleryChanged("the gallery changed while enrolling; retry the request")
            pending[image.sha256] = self._store.new_row(fields, image, embeddings[image.sha256])
        if not pending:
            return {}
        with self._live.lock:
            # A racing request's cleanup may have removed a crop we found present;
            # under the lock (cleanups take it too) make sure every file exists.
            data = {image.sha256: image.data for image in images}
            for sha in pending:
                self._crops.put(sha, data[sha])
            self._live.add(*self._store.insert(list(pending.values())))
        self._telemetry.enrolled.inc(len(pending))
        return pending

    def _forget_unreferenced(self, hashes: Sequence[str]) -> None:
        """Remove crops this request wrote if no committed row refers to them."""
        if not hashes:
            return
        with self._live.lock:
            referenced = self._store.referenced_hashes(list(hashes))
            self._crops.delete(sha for sha in hashes if sha not in referenced)


def _in_request_order(
    images: Sequence[DecodedImage],
    existing: dict[str, GalleryEntry],
    created: dict[str, GalleryEntry],
) -> list[Enrolled]:
    answered: set[str] = set()
    result = []
    for image in images:
        if image.sha256 in created and image.sha256 not in answered:
            result.append(Enrolled(created[image.sha256], True))
        else:
            result.append(Enrolled(existing.get(image.sha256) or created[image.sha256], False))
        answered.add(image.sha256)
    return result
