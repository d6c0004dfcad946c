"""Who is this? Rank gallery identities for one query crop."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile

from app.auth import READ
from app.errors import ApiError
from app.gallery import QueryFilters
from app.images import read_uploads
from app.schemas import ERROR_RESPONSES, ErrorResponse, QueryResponse, QueryResult, QueryTimings
from app.services import Services, get_services
from app.validation import as_utc, check_camera

router = APIRouter(tags=["query"])


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


@router.post(
    "/query",
    response_model=QueryResponse,
    dependencies=[READ],
    summary="Rank identities for one crop",
    responses={
        **ERROR_RESPONSES,
        409: {"model": ErrorResponse, "description": "model_version_mismatch"},
    },
)
async def query(
    image: Annotated[UploadFile, File(description="one JPEG, PNG or WebP crop")],
    services: Annotated[Services, Depends(get_services)],
    top_k: Annotated[int, Form(ge=1, le=100, description="identities to return")] = 10,
    camera: Annotated[
        str | None, Form(max_length=64, description="the camera the query crop comes from")
    ] = None,
    exclude_same_camera: Annotated[
        bool, Form(description="skip entries from the query's camera (needs camera)")
    ] = False,
    min_score: Annotated[
        float | None, Form(ge=-1.0, le=1.0, description="drop matches below this cosine")
    ] = None,
    captured_after: Annotated[
        datetime | None, Form(description="only entries captured at or after (ISO-8601)")
    ] = None,
    captured_before: Annotated[
        datetime | None, Form(description="only entries captured at or before (ISO-8601)")
    ] = None,
) -> QueryResponse:
    """Results are ranked by the cosine score of each identity's best entry.

    Filters apply to entries; the search widens until ``top_k`` identities
    survive them or the gallery is exhausted. An empty gallery gives empty results.
    """
    started = time.perf_counter()
    camera = check_camera(camera)
    if exclude_same_camera and camera is None:
        raise ApiError(
            422,
            "camera_required",
            "exclude_same_camera needs the query's camera: send the camera field too",
            {"field": "camera"},
        )
    after, before = as_utc(captured_after), as_utc(captured_before)
    if after is not None and before is not None and after > before:
        raise ApiError(
            422,
            "invalid_time_window",
            "captured_after is later than captured_before",
            {"field": "captured_after"},
        )
    settings = services.settings
    uploads = await read_uploads(
        [image], max_files=1, max_file_bytes=settings.max_file_bytes, field="image"
    )
    decoded = (await services.decoder.decode_all(uploads))[0]
    decoded_at = time.perf_counter()
    gallery = services.gallery
    gallery.require_compatible()
    embedding = (await services.batcher.embed(decoded.tensor.unsqueeze(0)))[0]
    embedded_at = time.perf_counter()
    filters = QueryFilters(
        camera=camera,
        exclude_same_camera=exclude_same_camera,
        min_score=min_score,
        captured_after=after,
        captured_before=before,
    )
    matches = await asyncio.to_thread(gallery.search, embedding, top_k, filters)
    finished = time.perf_counter()
    return QueryResponse(
        results=[
            QueryResult(
                rank=rank,
                identity=match.identity,
                score=round(match.score, 6),
                entry_id=match.entry_id,
                camera=match.camera,
                matches=match.matches,
            )
            for rank, match in enumerate(matches, start=1)
        ],
        model_version=gallery.model_version,
        gallery_size=gallery.index.count,
        timings=QueryTimings(
            decode_ms=_ms(decoded_at - started),
            embed_ms=_ms(embedded_at - decoded_at),
            search_ms=_ms(finished - embedded_at),
            total_ms=_ms(finished - started),
        ),
    )
