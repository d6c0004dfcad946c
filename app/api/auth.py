"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, three roles.

Only SHA-256 digests of keys are configured (REID_API_KEYS), so a leaked
configuration does not leak usable keys. Keys are long random tokens, so a
plain (unsalted) hash is enough; comparison is constant-time.

A route states its role once, as a :class:`RoleRequirement` dependency. The
same check runs twice: in :class:`AuthMiddleware`, before a byte of the body is
read (so an anonymous client cannot make the service receive, count or parse
a 512 MiB upload), and again as the route's dependency, so a route stays
protected even in an app assembled without the middleware.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import ApiError
from app.api.middleware import send_json_error
from app.settings import ApiKeySpec, Role
from app.telemetry import Telemetry

KEY_PREFIX = "reid_"

# Declared for OpenAPI's security schemes; the credentials are read from the headers directly.
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


def presented_key(headers: Headers) -> str | None:
    """``X-API-Key`` first, else the token of ``Authorization: Bearer <token>``."""
    if key := headers.get("x-api-key"):
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def authorize(headers: Headers, keys: list[ApiKeySpec], role: Role) -> Principal:
    """The caller, if it may act with ``role``; else an ApiError (401 or 403)."""
    if not keys:
        return LOCAL_OPERATOR
    presented = presented_key(headers)
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


class RoleRequirement:
    """Route dependency: the caller must hold ``role`` (or a role that implies it)."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(
        self,
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_header)],
    ) -> Principal:
        return authorize(request.headers, request.app.state.settings.api_keys, self.role)


def required_role(routes: Iterable[BaseRoute], scope: Scope) -> Role | None:
    """The role the route serving ``scope`` requires; None for open or unknown routes."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            for dependency in getattr(route, "dependencies", ()):
                if isinstance(dependency.dependency, RoleRequirement):
                    return dependency.dependency.role
            return None
    return None  # 404 and 405 are answered by the router, without reading the body


class AuthMiddleware:
    """Answer 401/403 before the app reads the body, for every route that needs a role.

    ``routes`` are the routers' own routes (as declared, before the app includes them).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: list[ApiKeySpec],
        routes: list[BaseRoute],
        telemetry: Telemetry,
    ) -> None:
        self.app = app
        self.keys = keys
        self.routes = routes
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.keys and scope["type"] == "http":
            role = required_role(self.routes, scope)
            if role is not None:
                try:
                    authorize(Headers(scope=scope), self.keys, role)
                except ApiError as refusal:
                    self.telemetry.errors.labels(code=refusal.code).inc()
                    await send_json_error(
                        send,
                        refusal.status_code,
                        refusal.code,
                        refusal.message,
                        refusal.details,
                        headers=refusal.headers,
                    )
                    return
        await self.app(scope, receive, send)
