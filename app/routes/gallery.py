"""Enroll crops and manage gallery entries."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import torch
from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile
from fastapi.responses import Response

from app.auth import READ, WRITE
from app.errors import ApiError
from app.gallery import EntryFields
from app.images import read_uploads
from app.pagination import decode_cursor, encode_cursor
from app.schemas import (
    ERROR_RESPONSES,
    DeletedEntry,
    EnrolledEntry,
    EnrollResponse,
    Entry,
    EntryPage,
    ErrorResponse,
)
from app.services import Services, get_services
from app.validation import (
    as_utc,
    check_camera,
    check_identity,
    check_source,
    parse_metadata,
)

router = APIRouter(tags=["gallery"])

EntryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="gallery entry id")]
_MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@router.post(
    "/gallery",
    status_code=201,
    response_model=EnrollResponse,
    dependencies=[WRITE],
    summary="Enroll one or more crops of one identity",
    responses={
        **ERROR_RESPONSES,
        409: {
            "model": ErrorResponse,
            "description": "an image is enrolled under another identity "
            "(duplicate_image), or the gallery was built by another model "
            "(model_version_mismatch)",
        },
    },
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
    services: Annotated[Services, Depends(get_services)],
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
    settings = services.settings
    fields = EntryFields(
        identity=check_identity(identity),
        camera=check_camera(camera),
        captured_at=as_utc(captured_at),
        source=check_source(source),
        extra=parse_metadata(metadata, settings.max_metadata_bytes),
    )
    uploads = await read_uploads(
        images,
        max_files=settings.max_files_per_request,
        max_file_bytes=settings.max_file_bytes,
        field="images",
    )
    decoded = await services.decoder.decode_all(uploads)
    gallery = services.gallery
    gallery.require_compatible()
    existing = await asyncio.to_thread(gallery.find_existing, fields.identity, decoded)
    fresh = list(
        {image.sha256: image for image in decoded if image.sha256 not in existing}.values()
    )
    embeddings = {}
    if fresh:
        vectors = await services.batcher.embed(torch.stack([image.tensor for image in fresh]))
        embeddings = {image.sha256: vector for image, vector in zip(fresh, vectors, strict=True)}
    stored = await asyncio.to_thread(gallery.enroll, fields, decoded, embeddings)
    return EnrollResponse(
        identity=fields.identity,
        entries=[
            EnrolledEntry(
                id=entry.id,
                sha256=entry.sha256,
                camera=entry.camera,
                captured_at=entry.captured_at,
                created=created,
            )
            for entry, created in stored
        ],
    )


@router.get(
    "/gallery",
    response_model=EntryPage,
    dependencies=[READ],
    summary="List entries, oldest first, optionally of one identity or camera",
    responses=ERROR_RESPONSES,
)
async def list_entries(
    services: Annotated[Services, Depends(get_services)],
    identity: Annotated[str | None, Query(max_length=128)] = None,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> EntryPage:
    after = decode_cursor(cursor, "entry", int) or 0
    rows = await asyncio.to_thread(
        services.gallery.list_entries,
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


async def _entry_or_404(services: Services, entry_id: int) -> Entry:
    entry = await asyncio.to_thread(services.gallery.get_entry, entry_id)
    if entry is None:
        raise ApiError(404, "entry_not_found", f"gallery entry {entry_id} does not exist")
    return Entry.of(entry)


@router.get(
    "/gallery/{entry_id}",
    response_model=Entry,
    dependencies=[READ],
    summary="One entry",
    responses={**ERROR_RESPONSES, 404: {"model": ErrorResponse}},
)
async def get_entry(
    entry_id: EntryId, services: Annotated[Services, Depends(get_services)]
) -> Entry:
    return await _entry_or_404(services, entry_id)


@router.get(
    "/gallery/{entry_id}/image",
    dependencies=[READ],
    summary="The stored crop, as enrolled",
    response_class=Response,
    responses={
        200: {"content": {mime: {} for mime in _MEDIA_TYPES.values()}},
        404: {"model": ErrorResponse},
    },
)
async def get_entry_image(
    entry_id: EntryId, services: Annotated[Services, Depends(get_services)]
) -> Response:
    entry = await _entry_or_404(services, entry_id)
    try:
        data = await asyncio.to_thread(services.gallery.crops.get, entry.sha256)
    except FileNotFoundError as error:
        raise ApiError(
            404,
            "image_not_found",
            f"the crop of entry {entry_id} is missing from the data directory",
        ) from error
    return Response(
        data,
        media_type=_MEDIA_TYPES.get(entry.image_format, "application/octet-stream"),
        headers={"X-Content-Type-Options": "nosniff"},
    )


@router.delete(
    "/gallery/{entry_id}",
    response_model=DeletedEntry,
    dependencies=[WRITE],
    summary="Delete one entry: its row, vector and stored crop",
    responses={**ERROR_RESPONSES, 404: {"model": ErrorResponse}},
)
async def delete_entry(
    entry_id: EntryId, services: Annotated[Services, Depends(get_services)]
) -> DeletedEntry:
    entry = await asyncio.to_thread(services.gallery.delete_entry, entry_id)
    if entry is None:
        raise ApiError(404, "entry_not_found", f"gallery entry {entry_id} does not exist")
    return DeletedEntry(id=entry.id, identity=entry.identity)
