"""Identities: the people in the gallery, and erasing one completely."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from app.auth import READ, WRITE
from app.errors import ApiError
from app.pagination import decode_cursor, encode_cursor
from app.schemas import (
    ERROR_RESPONSES,
    Entry,
    ErasedIdentity,
    ErrorResponse,
    IdentityDetail,
    IdentityPage,
    IdentitySummary,
)
from app.services import Services, get_services
from app.validation import check_identity

router = APIRouter(tags=["identities"])

IdentityName = Annotated[str, Path(description="the identity, URL-encoded", examples=["alice"])]
_DETAIL_ENTRIES = 100


@router.get(
    "/identities",
    response_model=IdentityPage,
    dependencies=[READ],
    summary="List identities with their entry counts, in name order",
    responses=ERROR_RESPONSES,
)
async def list_identities(
    services: Annotated[Services, Depends(get_services)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> IdentityPage:
    after = decode_cursor(cursor, "identity", str)
    rows = await asyncio.to_thread(services.gallery.list_identities, after=after, limit=limit + 1)
    page = rows[:limit]
    more = len(rows) > limit
    return IdentityPage(
        items=[IdentitySummary(**row) for row in page],
        next_cursor=encode_cursor("identity", page[-1]["identity"]) if more and page else None,
    )


@router.get(
    "/identities/{identity}",
    response_model=IdentityDetail,
    dependencies=[READ],
    summary="One identity: counts, cameras, time range and its first entries",
    responses={**ERROR_RESPONSES, 404: {"model": ErrorResponse}},
)
async def get_identity(
    identity: IdentityName, services: Annotated[Services, Depends(get_services)]
) -> IdentityDetail:
    name = check_identity(identity)
    summary = await asyncio.to_thread(
        services.gallery.identity_summary, name, entry_limit=_DETAIL_ENTRIES
    )
    if summary is None:
        raise ApiError(404, "identity_not_found", f"identity {name!r} has no entries")
    summary["entries"] = [Entry.of(entry) for entry in summary["entries"]]
    return IdentityDetail(**summary)


@router.delete(
    "/identities/{identity}",
    response_model=ErasedIdentity,
    dependencies=[WRITE],
    summary="Erase an identity: every entry, vector and stored crop (right to erasure)",
    responses={**ERROR_RESPONSES, 404: {"model": ErrorResponse}},
)
async def erase_identity(
    identity: IdentityName, services: Annotated[Services, Depends(get_services)]
) -> ErasedIdentity:
    name = check_identity(identity)
    deleted = await asyncio.to_thread(services.gallery.erase_identity, name)
    if not deleted:
        raise ApiError(404, "identity_not_found", f"identity {name!r} has no entries")
    return ErasedIdentity(identity=name, deleted_entries=deleted)
