"""What a synthetic crop shows: one person's fixed look and one camera's nuisance.

An identity is fixed clothing colours, a garment pattern, hair, build and
accessories (what a network should learn); a camera is its light level, colour
cast, background, scale, resolution, blur, noise and occluders (what it should
learn to ignore). Both are plain values drawn from a numpy Generator, so which
person or camera a key gives never depends on the drawing code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

Color = tuple[int, int, int]
T = TypeVar("T")

CLOTHING_COLORS: tuple[Color, ...] = (
    (22, 22, 26),  # black
    (236, 236, 230),  # white
    (128, 128, 128),  # grey
    (30, 40, 95),  # navy
    (45, 95, 205),  # blue
    (195, 30, 35),  # red
    (40, 135, 60),  # green
    (232, 200, 40),  # yellow
    (112, 70, 40),  # brown
    (212, 192, 150),  # beige
    (232, 130, 172),  # pink
    (112, 50, 145),  # purple
    (238, 122, 30),  # orange
    (28, 80, 50),  # dark green
    (95, 175, 205),  # light blue
    (122, 22, 42),  # maroon
)
SKIN_COLORS: tuple[Color, ...] = (
    (255, 224, 196),
    (234, 192, 134),
    (198, 134, 66),
    (141, 85, 36),
    (90, 56, 37),
)
HAIR_COLORS: tuple[Color, ...] = (
    (20, 15, 10),
    (72, 45, 25),
    (150, 100, 50),
    (222, 192, 120),
    (165, 165, 165),
    (172, 62, 30),
)
PATTERNS = ("plain", "stripes", "checks", "logo", "jacket")
LOWER_STYLES = ("trousers", "trousers", "shorts", "skirt")
HAIR_STYLES = ("short", "long", "bald")
CARRIED = ("none", "bag", "backpack")
BACKGROUNDS = ("plain", "gradient", "floor", "tiles", "stripes")


@dataclass(frozen=True)
class Appearance:
    """What stays the same for one person in every camera."""

    skin: Color
    hair: Color
    hair_style: str
    upper: Color
    upper_secondary: Color
    pattern: str
    pattern_scale: float
    long_sleeves: bool
    lower: Color
    lower_style: str
    shoes: Color
    hat: Color | None
    carried: str
    carried_color: Color
    carried_side: int  # -1 left, +1 right, in the person's unmirrored frame
    build: float
    head_size: float


@dataclass(frozen=True)
class CameraStyle:
    """What one camera does to every crop it produces."""

    gain: float
    cast: tuple[float, float, float]
    background: str
    background_colors: tuple[Color, Color]
    background_period: float
    texture: float
    horizon: float
    scale: float
    resolution: float
    blur: float
    noise: float
    occlusion: float
    mirror: bool


def jitter_color(rng: np.random.Generator, color: Color, amount: int) -> Color:
    """``color`` shifted by up to ``amount`` per channel: one palette entry, many shades."""
    shifted = np.asarray(color) + rng.integers(-amount, amount + 1, size=3)
    r, g, b = (int(v) for v in np.clip(shifted, 0, 255))
    return (r, g, b)


def _pick(rng: np.random.Generator, options: Sequence[T], exclude: T | None = None) -> T:
    choices = [option for option in options if option != exclude]
    return choices[int(rng.integers(len(choices)))]


def random_color(rng: np.random.Generator, low: int, high: int) -> Color:
    """Any colour with every channel in [low, high): backgrounds and occluders."""
    r, g, b = (int(v) for v in rng.integers(low, high, size=3))
    return (r, g, b)


def appearance_from_rng(rng: np.random.Generator) -> Appearance:
    """Draw one person's fixed look; each call with a fresh key is a new person."""
    upper = _pick(rng, CLOTHING_COLORS)
    carried = _pick(rng, CARRIED)
    return Appearance(
        skin=jitter_color(rng, _pick(rng, SKIN_COLORS), 10),
        hair=jitter_color(rng, _pick(rng, HAIR_COLORS), 10),
        hair_style=_pick(rng, HAIR_STYLES),
        upper=jitter_color(rng, upper, 12),
        upper_secondary=jitter_color(rng, _pick(rng, CLOTHING_COLORS, exclude=upper), 12),
        pattern=_pick(rng, PATTERNS),
        pattern_scale=float(rng.uniform(0.028, 0.05)),
        long_sleeves=bool(rng.random() < 0.5),
        lower=jitter_color(rng, _pick(rng, CLOTHING_COLORS), 12),
        lower_style=_pick(rng, LOWER_STYLES),
        shoes=jitter_color(rng, _pick(rng, CLOTHING_COLORS[:4] + CLOTHING_COLORS[8:10]), 10),
        hat=jitter_color(rng, _pick(rng, CLOTHING_COLORS), 10) if rng.random() < 0.25 else None,
        carried=carried,
        carried_color=jitter_color(rng, _pick(rng, CLOTHING_COLORS), 12),
        carried_side=-1 if rng.random() < 0.5 else 1,
        build=float(rng.uniform(0.82, 1.2)),
        head_size=float(rng.uniform(0.9, 1.1)),
    )


def camera_from_rng(rng: np.random.Generator) -> CameraStyle:
    """Draw one camera's nuisance; strong enough that raw pixels mislead."""
    return CameraStyle(
        gain=float(rng.uniform(0.7, 1.25)),
        cast=(
            float(rng.uniform(0.85, 1.15)),
            float(rng.uniform(0.9, 1.1)),
            float(rng.uniform(0.85, 1.15)),
        ),
        background=_pick(rng, BACKGROUNDS),
        background_colors=(
            random_color(rng, 30, 230),
            random_color(rng, 30, 230),
        ),
        background_period=float(rng.uniform(0.08, 0.25)),
        texture=float(rng.uniform(0.0, 40.0)),
        horizon=float(rng.uniform(0.55, 0.85)),
        scale=float(rng.uniform(0.74, 0.94)),
        resolution=float(rng.uniform(0.6, 1.0)),
        blur=float(rng.uniform(0.0, 1.0)),
        noise=float(rng.uniform(2.0, 7.0)),
        occlusion=float(rng.uniform(0.0, 0.25)),
        mirror=bool(rng.random() < 0.5),
    )
