"""Where does the network look? The spatial attention of one crop, as numbers and an overlay."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response

from app.api.deps import READ, ExplainerDep, SettingsDep
from app.api.error_codes import AUTH_CODES, IMAGE_CODES, UPLOAD_CODES, error_responses
from app.api.schemas_explain import ExplainResponse
from app.api.uploads import read_uploads

router = APIRouter(tags=["query"])


@router.post(
    "/explain",
    response_model=ExplainResponse,
    dependencies=[READ],
    summary="The spatial attention of one crop, and an overlay to draw",
    responses={
        200: {"content": {"image/png": {}}, "description": "JSON, or the overlay with format=png"},
        **error_responses(*AUTH_CODES, *UPLOAD_CODES, *IMAGE_CODES, "attention_unavailable"),
    },
)
async def explain(
    image: Annotated[UploadFile, File(description="one JPEG, PNG or WebP crop")],
    explainer: ExplainerDep,
    settings: SettingsDep,
    format: Annotated[
        Literal["json", "png"],
        Form(description="json: masks and overlay; png: only the overlay, as image/png"),
    ] = "json",
) -> ExplainResponse | Response:
    """Runs the loaded network on the crop and returns its spatial attention mask A_ed.

    The mask is the network's own output at its own resolution (layer3's map), values
    in [0, 1]; the overlay draws it on the fixed [0, 1] scale, never stretched per image.
    A model without spatial attention answers 409 ``attention_unavailable``.
    """
    uploads = await read_uploads([image], max_file_bytes=settings.max_file_bytes, field="image")
    explanation = await explainer.explain(uploads[0])
    if format == "png":
        return Response(
            explanation.overlay_png,
            media_type="image/png",
            headers={"X-Content-Type-Options": "nosniff"},
        )
    return ExplainResponse.of(explanation)
