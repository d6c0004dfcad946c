"""Operations: liveness, readiness, Prometheus metrics and the model card."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.api.deps import READ, ServicesDep
from app.api.error_codes import AUTH_CODES, error_responses
from app.api.schemas import Health, Readiness
from app.services import Services

router = APIRouter(tags=["operations"])


@router.get(
    "/health",
    response_model=Health,
    summary="Liveness: the process answers",
    responses=error_responses("remote_access_disabled"),
)
async def health() -> Health:
    return Health(status="ok")


def _readiness(services: Services) -> dict[str, Any]:
    """Every check reads; none changes the gallery or the index (reconciling is the
    maintenance pass's job)."""
    embedder = services.embedder
    checks: dict[str, Any] = {
        "model": {
            "ok": True,
            "version": embedder.version,
            "arch": embedder.card.config.arch,
            "trained": embedder.trained,
            "device": str(embedder.device),
            "warning": embedder.describe()["warning"],
        }
    }
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = {"ok": True, "backend": services.engine.dialect.name}
    except Exception as error:  # any driver error means "not ready", never a 500
        checks["database"] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        return checks
    lifecycle = services.gallery.lifecycle
    versions = lifecycle.versions
    versions.refresh()  # a census: cheap, and what this check is about
    checks["model_version"] = {
        "ok": not versions.refusing,
        "gallery_versions": services.gallery.store.census(),
        "lacking": sum(versions.foreign.values()),
        "message": versions.mismatch_message() if versions.foreign else None,
    }
    step = lifecycle.in_step()
    if lifecycle.last_reconciled is not None:
        last = lifecycle.last_reconciled
        step["reconciled"] = {"added": last.added, "removed": last.removed, "at": last.at}
    step["startup"] = {
        "source": lifecycle.startup.source,
        "reason": lifecycle.startup.reason,
        "seconds": round(lifecycle.startup.seconds, 3),
    }
    step["startup"]["replayed"] = lifecycle.startup.replayed
    step["gpu"] = lifecycle.gpu.as_dict()
    checks["index"] = step
    replication = services.replication
    position = replication.position()
    checks["replication"] = {
        "ok": not replication.lagging(position),
        "replica_id": replication.replica_id,
        **position.as_dict(),
        "max_lag_s": services.settings.max_replica_lag_s,
    }
    return checks


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness: model loaded, database reachable, index in step with it, not lagging",
    responses={
        **error_responses("remote_access_disabled"),
        503: {"model": Readiness, "description": "not ready; checks say why"},
    },
)
async def ready(services: ServicesDep) -> JSONResponse:
    """An untrained model still serves (checks.model.trained is false); a replica whose
    index lags the change log by more than REID_MAX_REPLICA_LAG_S answers 503."""
    checks = await asyncio.to_thread(_readiness, services)
    ok = all(check.get("ok", False) for check in checks.values())
    body = Readiness(status="ready" if ok else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}},
        **error_responses("remote_access_disabled"),
    },
)
async def metrics(services: ServicesDep) -> Response:
    services.telemetry.gallery_entries.set(services.gallery.live.count)
    # Refreshes the lag gauges; with the database away, the other metrics still answer.
    with contextlib.suppress(Exception):
        await asyncio.to_thread(services.replication.position)
    return Response(generate_latest(services.telemetry.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/model",
    dependencies=[READ],
    responses=error_responses(*AUTH_CODES),
    summary="The model card of the served network (trained or not, version, metrics)",
)
async def model_card(services: ServicesDep) -> dict[str, Any]:
    return services.embedder.describe()
