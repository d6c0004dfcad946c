"""Who is calling: the key's name and role, so a client knows what it may do before trying."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import READ, ReaderDep, SettingsDep
from app.api.error_codes import AUTH_CODES, error_responses
from app.api.schemas import WhoAmI

router = APIRouter(tags=["authentication"])


@router.get(
    "/whoami",
    response_model=WhoAmI,
    dependencies=[READ],
    summary="The caller's key name and role, and whether keys are checked",
    responses=error_responses(*AUTH_CODES),
)
async def whoami(principal: ReaderDep, settings: SettingsDep) -> WhoAmI:
    """Without keys (loopback only) every caller is the local operator, with role admin."""
    return WhoAmI(
        name=principal.name, role=principal.role.value, auth_enabled=settings.auth_enabled
    )
