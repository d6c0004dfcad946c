"""Draw a spatial attention mask over its crop: the picture a person judges attention by.

The mask is coloured on the one fixed [0, 1] scale, never stretched to its own range:
stretching each overlay once hid that a trained network gave every crop the same mask
(model/attention.py). The colours are a jet-like ramp, as the trainer's figures draw it
(training/plots.py), written here in numpy so the service never imports matplotlib.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

MAX_SIDE = 512  # the overlay's long side at most; a smaller crop is never enlarged
BLEND = 0.5  # the crop's share of each overlay pixel; the colour map has the rest
# Where each of red, green and blue peaks on the [0, 1] scale (jet: blue, cyan, yellow, red).
_PEAKS = np.array([0.75, 0.5, 0.25], dtype=np.float32)


def jet(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (clipped) as uint8 RGB: 0 dark blue, 0.5 green, 1 dark red."""
    clipped = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)[..., None]
    rgb = np.clip(1.5 - np.abs(4.0 * (clipped - _PEAKS)), 0.0, 1.0)
    return np.rint(rgb * 255.0).astype(np.uint8)


def display_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) scaled down so the long side is at most ``MAX_SIDE``, never up."""
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def upsample(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (h, w) mask resized bilinearly to ``size`` (width, height); values are not rescaled."""
    values = np.ascontiguousarray(mask, dtype=np.float32)
    return np.asarray(Image.fromarray(values).resize(size, Image.Resampling.BILINEAR))


def render_overlay(picture: Image.Image, mask: np.ndarray) -> bytes:
    """PNG bytes: ``picture`` at its display size, blended half and half with the mask's colours.

    The mask covers the whole crop (the network sees the crop resized to its input size,
    aspect ignored), so stretching it to the picture's size puts each cell back on the
    part of the crop it was computed from.
    """
    size = display_size(*picture.size)
    base = picture.convert("RGB")
    if base.size != size:
        base = base.resize(size, Image.Resampling.BILINEAR)
    colours = jet(upsample(mask, size)).astype(np.float32)
    blended = BLEND * np.asarray(base, dtype=np.float32) + (1.0 - BLEND) * colours
    buffer = io.BytesIO()
    Image.fromarray(np.rint(blended).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()
