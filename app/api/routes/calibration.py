"""Open-set calibration: fit one on the live gallery (a job), read the one in force, remove it."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, UploadFile

from app.api.deps import ADMIN, READ, EvaluationsDep, GalleryDep, SettingsDep
from app.api.error_codes import AUTH_CODES, UPLOAD_CODES, error_responses
from app.api.schemas import EvaluationAccepted, EvaluationStatus
from app.api.schemas_open_set import CalibrationOverview
from app.api.uploads import read_uploads
from app.jobs.labelled import parse_labels
from app.jobs.runner import CALIBRATION_KINDS

router = APIRouter(tags=["calibration"])


@router.post(
    "/calibrate",
    status_code=202,
    response_model=EvaluationAccepted,
    dependencies=[ADMIN],
    summary="Fit a site calibration on labelled crops against the live gallery",
    responses=error_responses(
        *AUTH_CODES,
        *UPLOAD_CODES,
        "invalid_labels",
        "invalid_identity",
        "gallery_too_large",
        "empty_gallery",
        "model_version_mismatch",
        "database_unavailable",
    ),
)
async def start_calibration(
    evaluations: EvaluationsDep,
    settings: SettingsDep,
    images: Annotated[
        list[UploadFile],
        File(description="labelled crops: of enrolled people and of people not enrolled"),
    ],
    identities: Annotated[
        str,
        Form(description="JSON array: the true identity of each image", examples=['["alice"]']),
    ],
) -> EvaluationAccepted:
    """Crops of people not enrolled are non-mated probes; a crop of an enrolled identity is
    mated against its own identity and non-mated against all the others, so the people of
    this site give non-mated probes too. The fitted calibration replaces any earlier one for
    this model."""
    uploads = await read_uploads(images, max_file_bytes=settings.max_file_bytes, field="images")
    labels = parse_labels(identities, None, len(uploads))
    job = await evaluations.submit_calibration(uploads, labels)
    return EvaluationAccepted.of(job, polled_at="/calibrate")


@router.get(
    "/calibrate/{job_id}",
    response_model=EvaluationStatus,
    dependencies=[ADMIN],
    summary="Status of a calibration job, and what it fitted",
    responses=error_responses(
        *AUTH_CODES, "validation_error", "job_not_found", "database_unavailable"
    ),
)
async def calibration_status(
    job_id: Annotated[str, Path(max_length=64)], evaluations: EvaluationsDep
) -> EvaluationStatus:
    return EvaluationStatus.of(await asyncio.to_thread(evaluations.get, job_id, CALIBRATION_KINDS))


@router.get(
    "/calibration",
    response_model=CalibrationOverview,
    dependencies=[READ],
    summary="The calibration in force: source, counts, thresholds and curve",
    responses=error_responses(*AUTH_CODES, "database_unavailable"),
)
async def calibration(gallery: GalleryDep) -> CalibrationOverview:
    return CalibrationOverview.of(await asyncio.to_thread(gallery.decider.overview))


@router.delete(
    "/calibration",
    response_model=CalibrationOverview,
    dependencies=[ADMIN],
    summary="Remove the site calibration; the model card's is in force again",
    responses=error_responses(*AUTH_CODES, "calibration_not_found", "database_unavailable"),
)
async def delete_calibration(gallery: GalleryDep) -> CalibrationOverview:
    """Answers what is in force afterwards: the model card's calibration, or none."""
    await asyncio.to_thread(gallery.calibrations.delete)
    return CalibrationOverview.of(await asyncio.to_thread(gallery.decider.overview))
