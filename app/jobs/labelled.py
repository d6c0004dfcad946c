"""Evaluation kind (b): labelled query crops scored against the live gallery.

The gallery's identities and cameras are strings; the shared evaluator wants
integer labels, so both sides are coded through one table per kind. A query
without a camera must never count as "same camera" as any gallery entry.
The result also lists the first queries' best entries (``ranked_lists``) for drawing.
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
from app.gallery.client_json import load_client_json
from app.gallery.entry_fields import check_camera, check_identity
from app.inference.decoding import Upload
from app.jobs.errors import InvalidLabels, JobFailed
from app.jobs.live_gallery import check_gallery, embed_uploads, load_gallery
from app.jobs.members import MemberEmbedder, Progress
from app.jobs.ranked_lists import ranked_lists
from app.jobs.ranking_options import RankingOptions
from model.evaluation.metrics import compute_reid_metrics

KIND = "labelled_queries"
ARCHIVE = "queries.zip"
LABELS = "labels.json"
MAX_LISTED_SKIPS = 20
_NO_GALLERY_CAMERA = -1
_NO_QUERY_CAMERA = -2


@dataclass(frozen=True)
class QueryLabels:
    identities: list[str]
    cameras: list[str | None]


def parse_labels(identities: str | None, cameras: str | None, count: int) -> QueryLabels:
    """The ``identities`` (required) and ``cameras`` (optional) form fields, one per image."""
    names = _json_list(identities, "identities", count)
    if names is None:
        raise InvalidLabels(
            "labelled queries need 'identities': a JSON array naming the true identity of "
            "each image, in order",
            {"field": "identities"},
        )
    if not all(isinstance(name, str) for name in names):
        raise InvalidLabels("identities must all be strings")
    camera_list = _json_list(cameras, "cameras", count) or [None] * count
    if not all(camera is None or isinstance(camera, str) for camera in camera_list):
        raise InvalidLabels("cameras must be strings or null")
    return QueryLabels(
        [check_identity(name) for name in names], [check_camera(c) for c in camera_list]
    )


def _json_list(raw: str | None, field: str, length: int) -> list[Any] | None:
    if raw is None:
        return None
    value = load_client_json(raw, field, lambda message: InvalidLabels(message, {"field": field}))
    if not isinstance(value, list) or len(value) != length:
        raise InvalidLabels(
            f"{field} must be a JSON array with one item per image ({length})", {"field": field}
        )
    return value


def prepare(
    directory: Path,
    uploads: list[Upload],
    labels: QueryLabels,
    gallery: Gallery,
    max_gallery: int,
    options: RankingOptions,
) -> dict[str, Any]:
    """Check the gallery can be evaluated against, then store the queries for the job."""
    gallery_size = check_gallery(gallery, max_gallery)
    options.check_gallery_size(gallery_size)
    with zipfile.ZipFile(directory / ARCHIVE, "w", zipfile.ZIP_STORED) as archive:
        for upload in uploads:
            archive.writestr(f"{upload.index:06d}", upload.data)
    stored = {
        "filenames": [upload.filename for upload in uploads],
        "identities": labels.identities,
        "cameras": labels.cameras,
    }
    (directory / LABELS).write_text(json.dumps(stored), encoding="utf-8")
    return {
        "counts": {"query_images": len(uploads), "gallery_entries": gallery_size},
        "ranking": options.to_dict(),
    }


async def run(
    directory: Path,
    gallery: Gallery,
    embedder: MemberEmbedder,
    progress: Progress,
    options: RankingOptions,
) -> dict[str, Any]:
    uploads = await embed_uploads(directory, ARCHIVE, LABELS, gallery, embedder, progress)
    labels, query, embed_s = uploads.labels, uploads.members, uploads.embed_s
    started = time.perf_counter()
    loaded = await load_gallery(gallery)
    gallery_ids, gallery_features, gallery_owners = loaded.ids, loaded.features, loaded.owners
    identity_codes: dict[str, int] = {}
    camera_codes: dict[str | None, int] = {}

    def code(table: dict[Any, int], key: Any) -> int:
        return table.setdefault(key, len(table) + 1)

    gallery_pids = np.array([code(identity_codes, owner.identity) for owner in gallery_owners])
    gallery_cams = np.array(
        [
            code(camera_codes, owner.camera) if owner.camera else _NO_GALLERY_CAMERA
            for owner in gallery_owners
        ]
    )
    enrolled = {owner.identity for owner in gallery_owners}
    unmatched = sum(1 for i in query.kept if labels["identities"][i] not in enrolled)
    if unmatched == len(query.kept):
        raise JobFailed(
            "none of the query identities is enrolled in the gallery, so nothing can be ranked",
            code="no_matching_identity",
        )
    query_pids = np.array([code(identity_codes, labels["identities"][i]) for i in query.kept])
    query_cams = np.array(
        [
            code(camera_codes, labels["cameras"][i]) if labels["cameras"][i] else _NO_QUERY_CAMERA
            for i in query.kept
        ]
    )
    metrics = await asyncio.to_thread(
        compute_reid_metrics,
        query.features,
        gallery_features,
        query_pids,
        gallery_pids,
        query_cams,
        gallery_cams,
        rerank=options.rerank_settings,
        query_expansion=options.aqe,
    )
    skipped = [
        {"file": labels["filenames"][int(item["file"])], "code": item["code"]}
        for item in query.skipped
    ]
    return {
        "metrics": metrics.to_dict(),
        "ranking": options.to_dict(),
        "counts": {
            "query_images": uploads.images,
            "gallery_entries": len(gallery_ids),
            "undecodable_skipped": len(skipped),
            "queries_without_gallery_identity": unmatched,
        },
        "skipped": skipped[:MAX_LISTED_SKIPS],
        "ranked_lists": await asyncio.to_thread(
            ranked_lists, query.features, query.kept, labels, loaded
        ),
        "timings": {
            "embed_s": round(embed_s, 3),
            "metrics_s": round(time.perf_counter() - started, 3),
        },
    }
