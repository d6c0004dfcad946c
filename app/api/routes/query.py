"""Who is this? Rank gallery identities for one query crop."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from app.api.deps import READ, GalleryDep, SettingsDep
from app.api.error_codes import AUTH_CODES, IMAGE_CODES, UPLOAD_CODES, error_responses
from app.api.schemas import QueryResponse
from app.api.uploads import read_uploads
from app.gallery.entry_fields import check_camera
from app.gallery.expansion import MAX_EXPANSION
from app.gallery.search import QueryFilters

router = APIRouter(tags=["query"])


@router.post(
    "/query",
    response_model=QueryResponse,
    dependencies=[READ],
    summary="Rank identities for one crop",
    responses=error_responses(
        *AUTH_CODES,
        *UPLOAD_CODES,
        *IMAGE_CODES,
        "invalid_camera",
        "invalid_timestamp",
        "camera_required",
        "invalid_time_window",
        "model_version_mismatch",
        "database_unavailable",
    ),
)
async def query(
    image: Annotated[UploadFile, File(description="one JPEG, PNG or WebP crop")],
    gallery: GalleryDep,
    settings: SettingsDep,
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
    max_false_positive_rate: Annotated[
        float | None,
        Form(
            gt=0.0,
            le=0.5,
            allow_inf_nan=False,
            description="the decision's operating point: the share of people who are not "
            "enrolled that may be decided match (default REID_OPEN_SET_FPIR)",
        ),
    ] = None,
    expansion: Annotated[
        int,
        Form(
            ge=0,
            le=MAX_EXPANSION,
            description="α-query expansion: rank again with the query plus the best entries "
            "of this many top identities, weighted by score³ (0 = off). The decision is the "
            "plain query's.",
        ),
    ] = 0,
) -> QueryResponse:
    """Results are ranked by the cosine score of each identity's best entry.

    Filters apply to entries; the search widens until ``top_k`` identities
    survive them or the gallery is exhausted. An empty gallery gives empty results.
    ``decision`` says whether the best identity is a match at the calibrated threshold
    for ``max_false_positive_rate`` and the identities the filters leave.
    """
    started = time.perf_counter()
    filters = QueryFilters.parse(
        camera=check_camera(camera),
        exclude_same_camera=exclude_same_camera,
        min_score=min_score,
        captured_after=captured_after,
        captured_before=captured_before,
    )
    if max_false_positive_rate is None:
        max_false_positive_rate = settings.open_set_fpir
    uploads = await read_uploads([image], max_file_bytes=settings.max_file_bytes, field="image")
    found = await gallery.identifier.identify(
        uploads[0],
        top_k,
        filters,
        max_false_positive_rate=max_false_positive_rate,
        started=started,
        expansion=expansion,
    )
    return QueryResponse.of(found)
