"""ASGI entry point: ``uvicorn app.main:app`` (or ``python -m app``, which adds safety checks).

Everything heavy (database, migrations, model, index) happens in the lifespan,
so importing this module is cheap and a failed start-up is reported before the
server accepts a single request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from app.api.auth import AuthMiddleware
from app.api.errors import install_error_handlers
from app.api.form_guard import FormGuardMiddleware
from app.api.limits import RequestLimits
from app.api.middleware import (
    BodyLimitMiddleware,
    LoopbackGuardMiddleware,
    RequestMetricsMiddleware,
)
from app.api.routes import (
    calibration,
    evaluate,
    explain,
    gallery,
    identities,
    query,
    system,
    ui,
    whoami,
)
from app.inference.embedder import Embedder
from app.services import build_services, close_services
from app.settings import Settings
from app.telemetry import Telemetry

log = logging.getLogger("app")

DESCRIPTION = """
Person re-identification gallery. Enroll crops of known people with
`POST /gallery`, then ask who a new crop shows with `POST /query`.

**Authentication**: when API keys are configured, send `Authorization: Bearer <key>`
or `X-API-Key: <key>`. Roles: `read` (query, list), `write` (enroll, delete),
`admin` (evaluate); each implies the ones before it.

**Errors** are always `{"error": {"code", "message", "details"}}`; branch on `code`.
"""


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if not logging.getLogger().handlers:  # plain `uvicorn app.main:app`: show our logs too
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    services = await asyncio.to_thread(
        build_services, settings, app.state.telemetry, embedder=app.state.embedder
    )
    app.state.services = services
    services.batcher.start()
    tasks = [
        asyncio.create_task(services.maintenance.loop(), name="maintenance"),
        asyncio.create_task(services.replication.run(), name="replication"),
    ]
    if settings.reembed_in_background:
        backfill = services.gallery.backfill.run(services.batcher.embed)
        tasks.append(asyncio.create_task(backfill, name="backfill"))
    if not settings.auth_enabled:
        log.warning(
            "no API keys configured: only loopback clients are served%s",
            " (REID_ALLOW_UNAUTHENTICATED=true: ALL clients are served)"
            if settings.allow_unauthenticated
            else "",
        )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await services.evaluations.shutdown()
        await asyncio.to_thread(close_services, services)


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> FastAPI:
    """The ASGI app; ``embedder`` is a network already loaded (else the lifespan loads it)."""
    settings = settings or Settings()
    telemetry = Telemetry()
    limits = RequestLimits.from_settings(settings)
    app = FastAPI(
        title="reid gallery service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        form_limits=limits.parser_ceiling,
    )
    app.state.settings = settings
    app.state.telemetry = telemetry
    app.state.embedder = embedder
    install_error_handlers(app)
    routers = [
        module.router
        for module in (
            gallery,
            query,
            explain,
            identities,
            evaluate,
            calibration,
            system,
            whoami,
        )
    ]
    for router in routers:
        app.include_router(router)
    app.include_router(ui.router)
    app.mount(ui.UI_PATH, ui.ConsoleFiles(), name="ui")

    # Added innermost first: metrics wraps the loopback guard, then authentication, then
    # the body limit, then the form guard; so no body byte is read before the caller is
    # known, and no part reaches the app's parser before it is counted and checked.
    app.add_middleware(FormGuardMiddleware, limits_for=limits.form, telemetry=telemetry)
    app.add_middleware(BodyLimitMiddleware, limit_for=limits.body, telemetry=telemetry)
    app.add_middleware(
        AuthMiddleware,
        keys=settings.api_keys,
        routes=[route for router in routers for route in router.routes],
        telemetry=telemetry,
    )
    app.add_middleware(
        LoopbackGuardMiddleware,
        active=not settings.auth_enabled and not settings.allow_unauthenticated,
        telemetry=telemetry,
    )
    app.add_middleware(RequestMetricsMiddleware, telemetry=telemetry)
    return app


app = create_app()
