"""Pure-ASGI middleware: loopback guard, streaming body limit, request metrics.

They are plain ASGI (not BaseHTTPMiddleware) so they see the body as it
streams in and can refuse a request before the multipart parser buffers it.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_payload
from app.telemetry import Telemetry


async def send_json_error(
    send: Send, status: int, code: str, message: str, details: object = None
) -> None:
    body = json.dumps(error_payload(code, message, details)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
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


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse bodies over the limit while they stream in, with or without Content-Length.

    A declared Content-Length over the limit is refused before reading a byte.
    Otherwise received bytes are counted; once over, reading stops, whatever the
    app was about to answer is discarded, and a 413 is sent instead.
    """

    def __init__(
        self, app: ASGIApp, *, limit_for: Callable[[Scope], int], telemetry: Telemetry
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
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit, int(declared))
            return

        received = 0
        exceeded = False
        app_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal app_started
            if exceeded and not app_started:
                return  # the app's reaction to the aborted read is replaced by our 413
            if message["type"] == "http.response.start":
                app_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not app_started:
            await self._refuse(send, limit, None)

    async def _refuse(self, send: Send, limit: int, declared: int | None) -> None:
        self.telemetry.errors.labels(code="body_too_large").inc()
        size = f"declares {declared} bytes" if declared is not None else "is larger"
        await send_json_error(
            send,
            413,
            "body_too_large",
            f"the request body {size}; the limit for this endpoint is {limit} bytes "
            "(REID_MAX_BODY_BYTES, or REID_EVALUATE_MAX_UPLOAD_BYTES for /evaluate)",
            {"limit": limit},
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
