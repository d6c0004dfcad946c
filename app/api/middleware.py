"""Pure-ASGI middleware: loopback guard, streaming body limit, request metrics.

They are plain ASGI (not BaseHTTPMiddleware) so they see the body as it
streams in and can refuse a request before the multipart parser buffers it.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_payload
from app.api.limits import BodyLimit
from app.telemetry import Telemetry


async def send_json_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    details: object = None,
    *,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer with the service's error shape and close: the unread body is never read."""
    body = json.dumps(error_payload(code, message, details)).encode()
    extra = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def is_loopback(host: str | None) -> bool:
    """Unix sockets (no host), ``localhost`` and loopback addresses are local.

    Used for client addresses and for the launcher's bind address; any other
    hostname counts as remote, since it could resolve anywhere.
    """
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class LoopbackGuardMiddleware:
    """With no API keys configured, only local clients may call the service.

    This makes ``uvicorn app.main:app --host 0.0.0.0`` safe by default; set
    REID_ALLOW_UNAUTHENTICATED=true to serve an open network on purpose.
    """

    def __init__(self, app: ASGIApp, *, active: bool, telemetry: Telemetry) -> None:
        self.app = app
        self.active = active
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.active and scope["type"] == "http":
            client = scope.get("client")
            if not is_loopback(client[0] if client else None):
                self.telemetry.errors.labels(code="remote_access_disabled").inc()
                await send_json_error(
                    send,
                    403,
                    "remote_access_disabled",
                    "no API keys are configured, so only local clients are served. Configure "
                    "REID_API_KEYS (python -m app.keys new --role read --name NAME) or set "
                    "REID_ALLOW_UNAUTHENTICATED=true to open the service deliberately.",
                )
                return
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Refusal:
    """An answer a guard gives instead of the app's: status, stable code, message, details."""

    status: int
    code: str
    message: str
    details: object = None


class _Refused(Exception):
    pass


async def serve_unless_refused(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    inspect: Callable[[bytes], Refusal | None],
) -> Refusal | None:
    """Run the app, showing ``inspect`` every body chunk before the app sees it.

    Once ``inspect`` refuses, reading stops and whatever the app was about to
    answer to the aborted read is discarded. The refusal is returned for the
    caller to send; None if there was none (or the app had already answered).
    """
    refusal: Refusal | None = None
    app_started = False

    async def inspecting_receive() -> Message:
        nonlocal refusal
        if refusal is not None:
            raise _Refused
        message = await receive()
        if message["type"] == "http.request":
            refusal = inspect(message.get("body", b""))
            if refusal is not None:
                raise _Refused
        return message

    async def guarded_send(message: Message) -> None:
        nonlocal app_started
        if refusal is not None and not app_started:
            return
        if message["type"] == "http.response.start":
            app_started = True
        await send(message)

    try:
        await app(scope, inspecting_receive, guarded_send)
    except _Refused:
        pass
    except Exception:
        if refusal is None:
            raise
    return refusal if not app_started else None


async def send_refusal(send: Send, refusal: Refusal, telemetry: Telemetry) -> None:
    telemetry.errors.labels(code=refusal.code).inc()
    await send_json_error(send, refusal.status, refusal.code, refusal.message, refusal.details)


class BodyLimitMiddleware:
    """Refuse bodies over the limit while they stream in, with or without Content-Length.

    A declared Content-Length over the limit is refused before reading a byte;
    otherwise received bytes are counted, and reading stops once over.
    """

    def __init__(
        self, app: ASGIApp, *, limit_for: Callable[[Scope], BodyLimit], telemetry: Telemetry
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit.bytes:
            await send_refusal(send, _too_large(limit, int(declared)), self.telemetry)
            return
        received = 0

        def count(chunk: bytes) -> Refusal | None:
            nonlocal received
            received += len(chunk)
            return _too_large(limit, None) if received > limit.bytes else None

        refusal = await serve_unless_refused(self.app, scope, receive, send, count)
        if refusal is not None:
            await send_refusal(send, refusal, self.telemetry)


def _too_large(limit: BodyLimit, declared: int | None) -> Refusal:
    size = f"declares {declared} bytes" if declared is not None else "is larger"
    return Refusal(
        413,
        "body_too_large",
        f"the request body {size}; the limit for this endpoint is {limit.bytes} bytes "
        f"({limit.setting})",
        {"limit": limit.bytes, "setting": limit.setting},
    )


class RequestMetricsMiddleware:
    """Latency histogram per route template (not raw path: bounded label cardinality)."""

    def __init__(self, app: ASGIApp, *, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.telemetry.request_seconds.labels(
                method=scope["method"], route=template, status=str(status)
            ).observe(time.perf_counter() - started)
