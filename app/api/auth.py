"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, three roles.

Only SHA-256 digests of keys are configured (REID_API_KEYS), so a leaked
configuration does not leak usable keys. Keys are long random tokens, so a
plain (unsalted) hash is enough; comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.api.errors import ApiError
from app.settings import ApiKeySpec, Role

KEY_PREFIX = "reid_"

_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key header")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's name and role, or the local operator when auth is off."""

    name: str
    role: Role


LOCAL_OPERATOR = Principal(name="local (authentication disabled)", role=Role.ADMIN)


def identify(presented: str, keys: list[ApiKeySpec]) -> Principal | None:
    digest = hash_key(presented)
    match = None
    for spec in keys:  # no early exit: timing must not reveal which key matched
        if hmac.compare_digest(digest, spec.sha256):
            match = spec
    return Principal(match.name, match.role) if match else None


def require(role: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency: the caller must hold ``role`` (or a role that implies it)."""

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_header)],
    ) -> Principal:
        keys: list[ApiKeySpec] = request.app.state.settings.api_keys
        if not keys:
            return LOCAL_OPERATOR
        presented = header_key or (bearer.credentials if bearer else None)
        challenge = {"WWW-Authenticate": "Bearer"}
        if not presented:
            raise ApiError(
                401,
                "unauthenticated",
                "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers=challenge,
            )
        principal = identify(presented, keys)
        if principal is None:
            raise ApiError(401, "invalid_api_key", "the API key is not valid", headers=challenge)
        if not principal.role.allows(role):
            raise ApiError(
                403,
                "forbidden",
                f"key {principal.name!r} has role {principal.role.value!r}; this endpoint needs "
                f"{role.value!r}",
                {"role": principal.role.value, "required": role.value},
            )
        return principal

    return dependency
