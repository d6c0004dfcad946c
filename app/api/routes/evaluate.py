"""Evaluation jobs: accepted with 202, polled with GET /evaluate/{id}."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, UploadFile

from app.api.deps import ADMIN, EvaluationsDep, SettingsDep
from app.api.error_codes import AUTH_CODES, UPLOAD_CODES, error_responses
from app.api.errors import ApiError
from app.api.schemas import (
    EvaluationAccepted,
    EvaluationStatus,
)
from app.api.uploads import read_uploads
from app.jobs.labelled import parse_labels
from app.jobs.ranking_options import parse_ranking_options
from app.jobs.runner import EVALUATION_KINDS

router = APIRouter(tags=["evaluation"])


@router.post(
    "/evaluate",
    status_code=202,
    response_model=EvaluationAccepted,
    dependencies=[ADMIN],
    summary="Start an evaluation job",
    responses=error_responses(
        *AUTH_CODES,
        *UPLOAD_CODES,
        "invalid_evaluation_request",
        "invalid_evaluation_options",
        "invalid_labels",
        "invalid_identity",
        "invalid_camera",
        "unsafe_zip",
        "invalid_zip",
        "invalid_dataset_layout",
        "zip_too_many_files",
        "zip_member_too_large",
        "zip_too_large",
        "zip_bomb",
        "gallery_too_large",
        "empty_gallery",
        "model_version_mismatch",
        "database_unavailable",
    ),
)
async def start_evaluation(
    evaluations: EvaluationsDep,
    settings: SettingsDep,
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
    rerank: Annotated[
        str | None,
        Form(description="true: k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3) before scoring"),
    ] = None,
    aqe: Annotated[
        str | None,
        Form(description="average query expansion with this many gallery neighbours"),
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
    options = parse_ranking_options(rerank, aqe)
    if dataset is not None:
        await dataset.seek(0)
        job = await evaluations.submit_market_zip(dataset.file, dataset.filename, options)
    else:
        assert images is not None
        uploads = await read_uploads(
            images,
            max_file_bytes=settings.max_file_bytes,
            field="images",
        )
        labels = parse_labels(identities, cameras, len(uploads))
        job = await evaluations.submit_labelled(uploads, labels, options)
    return EvaluationAccepted.of(job)


@router.get(
    "/evaluate/{job_id}",
    response_model=EvaluationStatus,
    dependencies=[ADMIN],
    summary="Status, progress and metrics of a job",
    responses=error_responses(
        *AUTH_CODES, "validation_error", "job_not_found", "database_unavailable"
    ),
)
async def evaluation_status(
    job_id: Annotated[str, Path(max_length=64)], evaluations: EvaluationsDep
) -> EvaluationStatus:
    return EvaluationStatus.of(await asyncio.to_thread(evaluations.get, job_id, EVALUATION_KINDS))
