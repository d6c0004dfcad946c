"""Identities: the people in the gallery, and erasing one completely."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.api.deps import READ, WRITE, GalleryDep
from app.api.error_codes import AUTH_CODES, error_responses
from app.api.pagination import decode_cursor, encode_cursor
from app.api.schemas import (
    ErasedIdentity,
    IdentityDetail,
    IdentityPage,
    IdentitySummary,
)
from app.gallery.entry_fields import check_identity

router = APIRouter(tags=["identities"])

IdentityName = Annotated[str, Path(description="the identity, URL-encoded", examples=["alice"])]
_DETAIL_ENTRIES = 100


@router.get(
    "/identities",
    response_model=IdentityPage,
    dependencies=[READ],
    summary="List identities with their entry counts, in name order",
    responses=error_responses(
        *AUTH_CODES, "validation_error", "invalid_cursor", "database_unavailable"
    ),
)
async def list_identities(
    gallery: GalleryDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> IdentityPage:
    after = decode_cursor(cursor, "identity", str)
    rows = await asyncio.to_thread(gallery.reads.identities, after=after, limit=limit + 1)
    page = rows[:limit]
    more = len(rows) > limit
    return IdentityPage(
        items=[IdentitySummary.of(row) for row in page],
        next_cursor=encode_cursor("identity", page[-1].identity) if more and page else None,
    )


@router.get(
    "/identities/{identity}",
    response_model=IdentityDetail,
    dependencies=[READ],
    summary="One identity: counts, cameras, time range and its first entries",
    responses=error_responses(
        *AUTH_CODES,
        "validation_error",
        "invalid_identity",
        "identity_not_found",
        "database_unavailable",
    ),
)
async def get_identity(identity: IdentityName, gallery: GalleryDep) -> IdentityDetail:
    name = check_identity(identity)
    record = await asyncio.to_thread(gallery.reads.identity, name, entry_limit=_DETAIL_ENTRIES)
    return IdentityDetail.of(record)


@router.delete(
    "/identities/{identity}",
    response_model=ErasedIdentity,
    dependencies=[WRITE],
    summary="Erase an identity: every entry, vector and stored crop (right to erasure)",
    responses=error_responses(
        *AUTH_CODES,
        "validation_error",
        "invalid_identity",
        "identity_not_found",
        "database_unavailable",
    ),
)
async def erase_identity(identity: IdentityName, gallery: GalleryDep) -> ErasedIdentity:
    name = check_identity(identity)
    deleted = await asyncio.to_thread(gallery.removal.erase_identity, name)
    return ErasedIdentity(identity=name, deleted_entries=deleted)
