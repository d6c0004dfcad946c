"""The body of ``POST /explain``: a crop's attention masks and the overlay drawn from them."""

from __future__ import annotations

import base64

from pydantic import BaseModel, Field

from app.inference.explain import Explanation

_DECIMALS = 4


class CropSize(BaseModel):
    width: int = Field(examples=[64])
    height: int = Field(examples=[128])


class SpatialAttentionBody(BaseModel):
    height: int = Field(description="rows of the attention map (layer3's)", examples=[16])
    width: int = Field(description="columns of the attention map", examples=[8])
    values: list[list[float]] = Field(
        description="the mask A_ed row by row, top first, in [0, 1], rounded to 4 decimals; "
        "at the map's own resolution, not rescaled",
        examples=[[[0.1234, 0.5678], [0.9012, 0.3456]]],
    )


class ExplainResponse(BaseModel):
    model_version: str = Field(examples=["3b9c0d1e2f4a5b6c"])
    crop: CropSize = Field(description="the uploaded crop's own size, as decoded")
    spatial_attention: SpatialAttentionBody
    channel_attention: list[float] | None = Field(
        description="one weight per layer3 channel, in [0, 1], rounded to 4 decimals; null "
        "when the model has no channel attention",
        examples=[[0.5012, 0.4987]],
    )
    overlay_png: str = Field(
        description="the crop (long side at most 512 px, never enlarged) blended half and "
        "half with a jet colour map of the mask on the fixed [0, 1] scale",
        examples=["data:image/png;base64,iVBORw0KGgo..."],
    )

    @classmethod
    def of(cls, explanation: Explanation) -> ExplainResponse:
        spatial = explanation.maps.spatial
        channel = explanation.maps.channel
        return cls(
            model_version=explanation.model_version,
            crop=CropSize(width=explanation.width, height=explanation.height),
            spatial_attention=SpatialAttentionBody(
                height=spatial.shape[0],
                width=spatial.shape[1],
                values=spatial.astype(float).round(_DECIMALS).tolist(),
            ),
            channel_attention=None
            if channel is None
            else channel.astype(float).round(_DECIMALS).tolist(),
            overlay_png="data:image/png;base64,"
            + base64.b64encode(explanation.overlay_png).decode("ascii"),
        )
