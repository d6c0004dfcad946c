"""Operations: liveness, readiness, Prometheus metrics and the model card."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.auth import READ
from app.schemas import Health, Readiness
from app.services import Services, get_services

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
async def health() -> Health:
    return Health(status="ok")


def _readiness(services: Services) -> dict[str, Any]:
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
    gallery = services.gallery
    census = gallery.refresh_versions()
    checks["model_version"] = {
        "ok": not gallery.foreign_versions,
        "gallery_versions": census,
        "message": gallery.mismatch_message() if gallery.foreign_versions else None,
    }
    step = gallery.in_step()
    if not step["ok"]:
        added, removed = gallery.reconcile()
        step = {**gallery.in_step(), "reconciled": {"added": added, "removed": removed}}
    step["startup"] = {
        "source": gallery.startup.source,
        "reason": gallery.startup.reason,
        "seconds": round(gallery.startup.seconds, 3),
    }
    checks["index"] = step
    return checks


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness: model loaded, database reachable, index in step with it",
    responses={503: {"model": Readiness, "description": "not ready; checks say why"}},
)
async def ready(services: Annotated[Services, Depends(get_services)]) -> JSONResponse:
    """An untrained model still serves (checks.model.trained is false)."""
    checks = await asyncio.to_thread(_readiness, services)
    ok = all(check.get("ok", False) for check in checks.values())
    body = Readiness(status="ready" if ok else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(services: Annotated[Services, Depends(get_services)]) -> Response:
    services.telemetry.gallery_entries.set(services.gallery.index.count)
    return Response(generate_latest(services.telemetry.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/model",
    dependencies=[READ],
    summary="The model card of the served network (trained or not, version, metrics)",
)
async def model_card(services: Annotated[Services, Depends(get_services)]) -> dict[str, Any]:
    return services.embedder.describe()
