"""The live gallery as one job sees it: checked before the job is accepted, loaded when it runs.

Labelled-query evaluation and site calibration both score uploaded crops against
every entry of the loaded model, so both refuse the same galleries up front (another
model's embeddings, nothing enrolled, more than ``REID_EVALUATE_MAX_GALLERY``) and
load it the same way: vectors streamed from the database, each kept only while its
row (identity, camera) still exists.
"""

from __future__ import annotations

import asyncio
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.gallery import Gallery
from app.gallery.store import EntryLabel
from app.jobs.errors import EmptyGallery, GalleryTooLarge, JobFailed
from app.jobs.members import EmbeddedMembers, MemberEmbedder, Progress


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


@dataclass(frozen=True)
class EmbeddedUploads:
    """A job's stored labels and its uploaded crops embedded by the live model."""

    labels: dict[str, Any]
    images: int  # in the archive, decodable or not
    members: EmbeddedMembers
    embed_s: float


async def embed_uploads(
    directory: Path,
    archive: str,
    labels: str,
    gallery: Gallery,
    embedder: MemberEmbedder,
    progress: Progress,
) -> EmbeddedUploads:
    """Embed the job's archive, once the gallery is known to be the loaded model's.

    A job in which no crop decodes fails with ``no_decodable_images``.
    """
    stored = json.loads((directory / labels).read_text(encoding="utf-8"))
    await asyncio.to_thread(gallery.lifecycle.require_compatible)
    with zipfile.ZipFile(directory / archive) as opened:
        names = sorted(opened.namelist())
        started = time.perf_counter()
        members = await embedder.embed(opened, names, progress)
        embed_s = time.perf_counter() - started
    if not len(members.features):
        raise JobFailed("none of the uploaded images decoded", code="no_decodable_images")
    return EmbeddedUploads(stored, len(names), members, embed_s)
