"""The live gallery as one job sees it: checked before the job is accepted, loaded when it runs.

Labelled-query evaluation and site calibration both score uploaded crops against
every entry of the loaded model, so both refuse the same galleries up front (another
model's embeddings, nothing enrolled, more than ``REID_EVALUATE_MAX_GALLERY``) and
load it the same way: vectors streamed from the database, each kept only while its
row (identity, camera) still exists.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from app.gallery import Gallery
from app.gallery.store import EntryLabel
from app.jobs.errors import EmptyGallery, GalleryTooLarge, JobFailed


def check_gallery(gallery: Gallery, max_gallery: int) -> int:
    """The gallery's entry count, once it is known a job can run against it."""
    gallery.lifecycle.require_compatible()
    size = gallery.live.count
    if size == 0:
        raise EmptyGallery("the gallery is empty: enroll identities before evaluating")
    if size > max_gallery:
        raise GalleryTooLarge(
            f"the gallery holds {size} entries; evaluating against more than "
            f"{max_gallery} is refused (REID_EVALUATE_MAX_GALLERY)"
        )
    return size


@dataclass(frozen=True)
class LoadedGallery:
    ids: np.ndarray  # (N,) entry ids
    features: np.ndarray  # (N, D) unit vectors
    owners: list[EntryLabel]  # one per row: identity, camera, capture time


async def load_gallery(gallery: Gallery) -> LoadedGallery:
    """Every entry of the loaded model, as of now; a job fails if none is left.

    The caller checks the model version first (``require_compatible``), before it
    spends time embedding its own images.
    """
    chunks = await asyncio.to_thread(lambda: list(gallery.store.vector_chunks()))
    if not chunks:
        raise JobFailed("the gallery became empty during the job", code="empty_gallery")
    ids = np.concatenate([chunk_ids for chunk_ids, _ in chunks])
    features = np.concatenate([vectors for _, vectors in chunks])
    labels = await asyncio.to_thread(gallery.store.labels, ids.tolist())
    keep = np.array([int(i) in labels for i in ids], dtype=bool)
    ids, features = ids[keep], features[keep]
    return LoadedGallery(ids, features, [labels[int(i)] for i in ids])
