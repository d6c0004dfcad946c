"""The operator's console: static pages at ``/ui``, and ``/`` sending browsers there.

The console is plain HTML, CSS and JavaScript shipped in the package
(``app/ui/static``): no build step, nothing fetched from another origin, so it
works on a site with no internet. The files hold no data; every gallery read
goes through the JSON API with the caller's key, so the server enforces every
role exactly as for any other client. The files are served without a key for
that reason, and under a Content-Security-Policy that forbids every other origin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from app.api.errors import ApiError

STATIC_DIR = Path(__file__).resolve().parents[2] / "ui" / "static"
UI_PATH = "/ui"

# Only this origin; images also as blob: (fetched with the key) and data: (overlays).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def root(request: Request) -> RedirectResponse:
    """Browsers go to the console; API clients keep the JSON 404 they always got."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse(f"{UI_PATH}/", status_code=307)
    raise ApiError(404, "not_found", "no route at '/': the API is described at /docs")


class ConsoleFiles(StaticFiles):
    """The console's files with the headers that keep a page from loading anything foreign."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC_DIR, html=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-cache"),
                ]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)
