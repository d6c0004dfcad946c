"""One error shape for every failure: ``{"error": {"code", "message", "details"}}``.

Clients branch on ``code`` (stable, documented in docs/service.md); ``message``
tells a human what to change. Nothing here ever echoes a traceback. This is
the one place that gives a domain failure (``app.errors``) its HTTP status:
by its kind, so a new failure of a known kind needs no new mapping.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import Conflict, InvalidInput, LimitExceeded, NotFound, ReidError, StorageFailure

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
}


# Most specific kind first; every ReidError subclass falls under one of these.
_STATUS_BY_KIND: tuple[tuple[type[ReidError], int], ...] = (
    (InvalidInput, 422),
    (LimitExceeded, 413),
    (NotFound, 404),
    (Conflict, 409),
    (StorageFailure, 507),
)


def status_of(error: ReidError) -> int | None:
    """The HTTP status of a domain failure's kind; None for a kind no client should see."""
    for kind, status in _STATUS_BY_KIND:
        if isinstance(error, kind):
            return status
    return None


class ApiError(Exception):
    """A client-facing failure with a stable code."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_payload(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_payload(code, message, details), status_code=status_code, headers=headers
    )


def _count(request: Request, code: str) -> None:
    telemetry = getattr(request.app.state, "telemetry", None)
    if telemetry is not None:
        telemetry.errors.labels(code=code).inc()


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    _count(request, error.code)
    return error_response(
        error.status_code, error.code, error.message, error.details, error.headers
    )


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ReidError)
    status = status_of(error)
    if status is None:
        return await _unexpected_error(request, error)
    _count(request, error.code)
    return error_response(status, error.code, error.message, error.details)


def _clean_validation_errors(errors: Any) -> list[dict[str, Any]]:
    # Pydantic's own entries may hold the raw input (bytes of an upload) and
    # exception objects; keep only what is serialisable and useful.
    cleaned = []
    for item in errors:
        entry = {
            "loc": [str(part) for part in item.get("loc", ())],
            "msg": str(item.get("msg", "")),
            "type": str(item.get("type", "")),
        }
        cleaned.append(entry)
    return cleaned


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = _clean_validation_errors(error.errors())
    summary = "; ".join(
        f"{'.'.join(item['loc'][1:] or item['loc'])}: {item['msg']}" for item in details[:5]
    )
    _count(request, "validation_error")
    return error_response(422, "validation_error", f"invalid request: {summary}", details)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    status = error.status_code
    message = str(error.detail)
    code = _HTTP_CODES.get(status, "http_error")
    _count(request, code)
    return error_response(status, code, message, None, getattr(error, "headers", None))


async def _database_unavailable(request: Request, error: Exception) -> JSONResponse:
    # Connection loss, a PostgreSQL restart, SQLite's busy timeout: the request did not
    # happen and may simply be retried, which a 500 would not say.
    log.error("database error on %s %s: %s", request.method, request.url.path, error)
    _count(request, "database_unavailable")
    return error_response(
        503,
        "database_unavailable",
        "the database is unavailable or busy; nothing was changed, retry shortly",
        headers={"Retry-After": "5"},
    )


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    _count(request, "internal_error")
    return error_response(
        500,
        "internal_error",
        "the server failed to handle this request; it has been logged",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ReidError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
