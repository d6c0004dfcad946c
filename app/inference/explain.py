"""Where the network looks: the attention masks of one crop, and the overlay drawn from them.

The spatial mask is the ``spatial_attention`` output of ``ReIDNet.forward``, computed
the way the service embeds (the same preprocessing, device and bf16 setting), so what
a person sees is what shaped the served embedding.

The forward runs in a worker thread beside the batcher's. That is safe: the network
is in eval mode and nothing in it keeps state between calls (batch norm reads its
running statistics, no hooks are registered), and ``inference_mode`` and autocast
are per thread. One explanation runs at a time, so a burst of console requests
cannot take the cores from queries; each is a batch of one and not on any hot path.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import torch

from app.errors import Conflict
from app.inference.decoding import ImageDecoder, Upload
from app.inference.embedder import Embedder
from app.inference.overlay import render_overlay


class AttentionUnavailable(Conflict):
    """The loaded model has no spatial attention branch, so there is no mask to draw."""

    code = "attention_unavailable"


@dataclass(frozen=True)
class AttentionMaps:
    spatial: np.ndarray  # (h, w) float32 in [0, 1], at the attention map's own resolution
    channel: np.ndarray | None  # (C,) float32 in [0, 1]; None without channel attention


@dataclass(frozen=True)
class Explanation:
    model_version: str
    width: int  # of the uploaded crop, as decoded (EXIF orientation applied)
    height: int
    maps: AttentionMaps
    overlay_png: bytes


def attention_maps(embedder: Embedder, tensor: torch.Tensor) -> AttentionMaps:
    """The masks of one preprocessed crop (3, H, W); blocking, call it from a worker thread."""
    with torch.inference_mode(), embedder.compute.autocast():
        output = embedder.network(embedder.compute.to_device(tensor.unsqueeze(0)))
    if output.spatial_attention is None:
        raise _unavailable(embedder)
    channel = output.channel_attention
    return AttentionMaps(
        spatial=output.spatial_attention[0, 0].float().cpu().numpy(),
        channel=None if channel is None else channel[0, :, 0, 0].float().cpu().numpy(),
    )


def _unavailable(embedder: Embedder) -> AttentionUnavailable:
    attention = embedder.card.config.attention
    return AttentionUnavailable(
        f"the loaded model (version {embedder.version}, attention={attention!r}) has no "
        "spatial attention to draw; serve a checkpoint trained with spatial attention "
        "(attention 'both' or 'spatial')",
        {"attention": attention},
    )


class Explainer:
    """Decode one crop, run the network on it, draw the overlay."""

    def __init__(self, embedder: Embedder, decoder: ImageDecoder) -> None:
        self._embedder = embedder
        self._decoder = decoder
        self._one_at_a_time = asyncio.Semaphore(1)

    async def explain(self, upload: Upload) -> Explanation:
        """Refuses a model without spatial attention before decoding anything."""
        if not self._embedder.card.config.uses_spatial_attention:
            raise _unavailable(self._embedder)
        decoded, picture = await self._decoder.decode_picture(upload)
        async with self._one_at_a_time:
            maps = await asyncio.to_thread(attention_maps, self._embedder, decoded.tensor)
            overlay = await asyncio.to_thread(render_overlay, picture, maps.spatial)
        return Explanation(
            model_version=self._embedder.version,
            width=decoded.width,
            height=decoded.height,
            maps=maps,
            overlay_png=overlay,
        )
