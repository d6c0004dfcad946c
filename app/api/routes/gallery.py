"""Enroll crops and manage gallery entries."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import Response

from app.api.deps import READ, WRITE, GalleryDep, SettingsDep
from app.api.error_codes import (
    AUTH_CODES,
    ENTRY_FIELD_CODES,
    IMAGE_CODES,
    UPLOAD_CODES,
    error_responses,
)
from app.api.pagination import decode_cursor, encode_cursor
from app.api.schemas import (
    DeletedEntry,
    EnrollResponse,
    Entry,
    EntryPage,
)
from app.api.uploads import read_uploads
from app.gallery.entry_fields import EntryFields, check_camera, check_identity
from app.gallery.thumbnails import ThumbnailSize

router = APIRouter(tags=["gallery"])

EntryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="gallery entry id")]
# What the two image routes (the crop and its thumbnail) may answer besides the image.
_IMAGE_ROUTE_CODES = (
    *AUTH_CODES,
    "validation_error",
    "entry_not_found",
    "image_not_found",
    "database_unavailable",
)
_MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@router.post(
    "/gallery",
    status_code=201,
    response_model=EnrollResponse,
    dependencies=[WRITE],
    summary="Enroll one or more crops of one identity",
    responses=error_responses(
        *AUTH_CODES,
        *UPLOAD_CODES,
        *IMAGE_CODES,
        *ENTRY_FIELD_CODES,
        "duplicate_image",
        "model_version_mismatch",
        "conflict",
        "database_unavailable",
        "storage_error",
    ),
)
async def enroll(
    identity: Annotated[
        str,
        Form(
            min_length=1,
            max_length=128,
            description="who the crops show; see docs/service.md for allowed characters",
            examples=["alice"],
        ),
    ],
    images: Annotated[
        list[UploadFile],
        File(description="JPEG, PNG or WebP crops; checked by decoding, not by Content-Type"),
    ],
    gallery: GalleryDep,
    settings: SettingsDep,
    camera: Annotated[str | None, Form(max_length=64, examples=["lobby-2"])] = None,
    captured_at: Annotated[
        datetime | None,
        Form(description="ISO-8601; without a zone it is taken as UTC"),
    ] = None,
    source: Annotated[str | None, Form(max_length=256, examples=["nvr-7"])] = None,
    metadata: Annotated[
        str | None,
        Form(description="a JSON object (REID_MAX_METADATA_BYTES)", examples=['{"track": 118}']),
    ] = None,
) -> EnrollResponse:
    """All-or-nothing: if any file is bad, nothing is stored and the error names it.

    Re-sending the same bytes for the same identity returns the existing entry
    with ``created: false``; the same bytes under another identity is a 409.
    """
    fields = EntryFields.parse(
        identity=identity,
        camera=camera,
        captured_at=captured_at,
        source=source,
        metadata=metadata,
        max_metadata_bytes=settings.max_metadata_bytes,
    )
    uploads = await read_uploads(
        images,
        max_file_bytes=settings.max_file_bytes,
        field="images",
    )
    stored = await gallery.enrollment.enroll(fields, uploads)
    return EnrollResponse.of(fields.identity, stored)


@router.get(
    "/gallery",
    response_model=EntryPage,
    dependencies=[READ],
    summary="List entries, oldest first, optionally of one identity or camera",
    responses=error_responses(
        *AUTH_CODES,
        "validation_error",
        "invalid_identity",
        "invalid_camera",
        "invalid_cursor",
        "database_unavailable",
    ),
)
async def list_entries(
    gallery: GalleryDep,
    identity: Annotated[str | None, Query(max_length=128)] = None,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> EntryPage:
    after = decode_cursor(cursor, "entry", int) or 0
    rows = await asyncio.to_thread(
        gallery.reads.entries,
        identity=None if identity is None else check_identity(identity),
        camera=check_camera(camera),
        after_id=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    more = len(rows) > limit
    return EntryPage(
        items=[Entry.of(row) for row in page],
        next_cursor=encode_cursor("entry", page[-1].id) if more and page else None,
    )


@router.get(
    "/gallery/{entry_id}",
    response_model=Entry,
    dependencies=[READ],
    summary="One entry",
    responses=error_responses(
        *AUTH_CODES, "validation_error", "entry_not_found", "database_unavailable"
    ),
)
async def get_entry(entry_id: EntryId, gallery: GalleryDep) -> Entry:
    return Entry.of(await asyncio.to_thread(gallery.reads.entry, entry_id))


@router.get(
    "/gallery/{entry_id}/image",
    dependencies=[READ],
    summary="The stored crop, as enrolled",
    response_class=Response,
    responses={
        200: {"content": {mime: {} for mime in _MEDIA_TYPES.values()}},
        **error_responses(*_IMAGE_ROUTE_CODES),
    },
)
async def get_entry_image(entry_id: EntryId, gallery: GalleryDep) -> Response:
    entry, data = await asyncio.to_thread(gallery.reads.crop, entry_id)
    return Response(
        data,
        media_type=_MEDIA_TYPES.get(entry.image_format, "application/octet-stream"),
        headers={"X-Content-Type-Options": "nosniff"},
    )


@router.get(
    "/gallery/{entry_id}/thumbnail",
    dependencies=[READ],
    summary="A JPEG thumbnail of the stored crop, cached server-side",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}},
        **error_responses(*_IMAGE_ROUTE_CODES),
    },
)
async def get_entry_thumbnail(
    entry_id: EntryId,
    gallery: GalleryDep,
    size: Annotated[
        ThumbnailSize, Query(description="fits inside size x size, aspect kept, never enlarged")
    ] = ThumbnailSize.MEDIUM,
) -> Response:
    """Rendered on its first request and cached until the entry is deleted.

    Entry ids are never reused, so a client may cache the answer as well.
    """
    data = await asyncio.to_thread(gallery.reads.thumbnail, entry_id, size)
    return Response(
        data,
        media_type="image/jpeg",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
    )


@router.delete(
    "/gallery/{entry_id}",
    response_model=DeletedEntry,
    dependencies=[WRITE],
    summary="Delete one entry: its row, vector and stored crop",
    responses=error_responses(
        *AUTH_CODES, "validation_error", "entry_not_found", "database_unavailable"
    ),
)
async def delete_entry(entry_id: EntryId, gallery: GalleryDep) -> DeletedEntry:
    entry = await asyncio.to_thread(gallery.removal.delete_entry, entry_id)
    return DeletedEntry(id=entry.id, identity=entry.identity)
