"""Evaluation jobs: accepted with 202, polled with GET /evaluate/{id}."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile

from app.auth import ADMIN
from app.errors import ApiError
from app.evaluation import LABELLED_QUERIES, MARKET_ZIP
from app.images import read_uploads
from app.orm import EvaluationJob
from app.schemas import (
    ERROR_RESPONSES,
    ErrorBody,
    ErrorResponse,
    EvaluationAccepted,
    EvaluationStatus,
)
from app.services import Services, get_services
from app.validation import check_camera, check_identity

router = APIRouter(tags=["evaluation"])


def _json_list(raw: str | None, field: str, length: int) -> list[Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise ApiError(
            422, "invalid_labels", f"{field} is not valid JSON: {error}", {"field": field}
        ) from error
    if not isinstance(value, list) or len(value) != length:
        raise ApiError(
            422,
            "invalid_labels",
            f"{field} must be a JSON array with one item per image ({length})",
            {"field": field},
        )
    return value


def _labels(
    identities: str | None, cameras: str | None, count: int
) -> tuple[list[str], list[str | None]]:
    names = _json_list(identities, "identities", count)
    if names is None:
        raise ApiError(
            422,
            "invalid_labels",
            "labelled queries need 'identities': a JSON array naming the true identity of "
            "each image, in order",
            {"field": "identities"},
        )
    if not all(isinstance(name, str) for name in names):
        raise ApiError(422, "invalid_labels", "identities must all be strings")
    camera_list = _json_list(cameras, "cameras", count) or [None] * count
    if not all(camera is None or isinstance(camera, str) for camera in camera_list):
        raise ApiError(422, "invalid_labels", "cameras must be strings or null")
    return [check_identity(name) for name in names], [check_camera(c) for c in camera_list]


def _save_upload(upload: UploadFile, target: FilePath) -> None:
    upload.file.seek(0)
    with open(target, "wb") as handle:
        shutil.copyfileobj(upload.file, handle, length=1 << 20)


@router.post(
    "/evaluate",
    status_code=202,
    response_model=EvaluationAccepted,
    dependencies=[ADMIN],
    summary="Start an evaluation job",
    responses={
        **ERROR_RESPONSES,
        409: {"model": ErrorResponse, "description": "empty gallery or model mismatch (b)"},
    },
)
async def start_evaluation(
    services: Annotated[Services, Depends(get_services)],
    dataset: Annotated[
        UploadFile | None,
        File(
            description="(a) a zip in Market-1501 layout (query/, bounding_box_test/), "
            "evaluated with the loaded model in isolation from the gallery"
        ),
    ] = None,
    images: Annotated[
        list[UploadFile] | None,
        File(description="(b) labelled query images, scored against the live gallery"),
    ] = None,
    identities: Annotated[
        str | None,
        Form(description="(b) JSON array: the true identity of each image", examples=['["alice"]']),
    ] = None,
    cameras: Annotated[
        str | None,
        Form(description="(b) optional JSON array: each image's camera (or null)"),
    ] = None,
) -> EvaluationAccepted:
    """Send either ``dataset`` (a) or ``images`` + ``identities`` (b), not both."""
    if (dataset is None) == (not images):
        raise ApiError(
            422,
            "invalid_evaluation_request",
            "send either 'dataset' (a Market-1501 zip) or 'images' with 'identities' "
            "(labelled queries), not both and not neither",
        )
    runner = services.evaluations
    job_id, directory = await asyncio.to_thread(runner.new_job_dir)
    try:
        if dataset is not None:
            kind = MARKET_ZIP
            await asyncio.to_thread(_save_upload, dataset, directory / "dataset.zip")
            params = await asyncio.to_thread(runner.prepare_market_zip, directory)
            params["filename"] = dataset.filename
        else:
            assert images is not None
            kind = LABELLED_QUERIES
            uploads = await read_uploads(
                images,
                max_files=services.settings.zip_max_files,
                max_file_bytes=services.settings.max_file_bytes,
                field="images",
            )
            names, camera_list = _labels(identities, cameras, len(uploads))
            params = await asyncio.to_thread(
                runner.prepare_labelled, directory, uploads, names, camera_list
            )
        await asyncio.to_thread(runner.create_job, job_id, kind, params)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    runner.start(job_id, kind, directory)
    return EvaluationAccepted(
        id=job_id, status="queued", kind=kind, status_url=f"/evaluate/{job_id}"
    )


def _status(job: EvaluationJob) -> EvaluationStatus:
    error = (
        ErrorBody(code=job.error_code, message=job.error_message or "", details=None)
        if job.error_code
        else None
    )
    return EvaluationStatus(
        id=job.id,
        kind=job.kind,
        status=job.status,
        progress=job.progress,
        model_version=job.model_version,
        params=job.params,
        result=job.result,
        error=error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


@router.get(
    "/evaluate/{job_id}",
    response_model=EvaluationStatus,
    dependencies=[ADMIN],
    summary="Status, progress and metrics of a job",
    responses={**ERROR_RESPONSES, 404: {"model": ErrorResponse}},
)
async def evaluation_status(
    job_id: Annotated[str, Path(max_length=64)],
    services: Annotated[Services, Depends(get_services)],
) -> EvaluationStatus:
    job = await asyncio.to_thread(services.evaluations.get, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"evaluation job {job_id!r} does not exist")
    return _status(job)
