"""Draw person-like crops whose identity cues survive camera changes.

The synthetic data exists so training, evaluation and the service can be tested
end to end without downloading Market-1501. For that to mean anything the task
must be neither trivial nor impossible: an identity is fixed clothing colours, a
garment pattern, hair, build and accessories (learnable), while each camera adds
its own light level, colour cast, background, scale, resolution, blur, noise and
occluders (nuisance that a network which has not learnt identity cues latches
onto). Everything random is drawn from a numpy Generator handed in by the
caller, so one crop never depends on the order in which others were drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

BASE_WIDTH = 128
BASE_HEIGHT = 256

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


def _jitter(rng: np.random.Generator, color: Color, amount: int) -> Color:
    shifted = np.asarray(color) + rng.integers(-amount, amount + 1, size=3)
    r, g, b = (int(v) for v in np.clip(shifted, 0, 255))
    return (r, g, b)


def _pick(rng: np.random.Generator, options: Sequence[T], exclude: T | None = None) -> T:
    choices = [option for option in options if option != exclude]
    return choices[int(rng.integers(len(choices)))]


def _random_color(rng: np.random.Generator, low: int, high: int) -> Color:
    r, g, b = (int(v) for v in rng.integers(low, high, size=3))
    return (r, g, b)


def appearance_from_rng(rng: np.random.Generator) -> Appearance:
    """Draw one person's fixed look; each call with a fresh key is a new person."""
    upper = _pick(rng, CLOTHING_COLORS)
    carried = _pick(rng, CARRIED)
    return Appearance(
        skin=_jitter(rng, _pick(rng, SKIN_COLORS), 10),
        hair=_jitter(rng, _pick(rng, HAIR_COLORS), 10),
        hair_style=_pick(rng, HAIR_STYLES),
        upper=_jitter(rng, upper, 12),
        upper_secondary=_jitter(rng, _pick(rng, CLOTHING_COLORS, exclude=upper), 12),
        pattern=_pick(rng, PATTERNS),
        pattern_scale=float(rng.uniform(0.028, 0.05)),
        long_sleeves=bool(rng.random() < 0.5),
        lower=_jitter(rng, _pick(rng, CLOTHING_COLORS), 12),
        lower_style=_pick(rng, LOWER_STYLES),
        shoes=_jitter(rng, _pick(rng, CLOTHING_COLORS[:4] + CLOTHING_COLORS[8:10]), 10),
        hat=_jitter(rng, _pick(rng, CLOTHING_COLORS), 10) if rng.random() < 0.25 else None,
        carried=carried,
        carried_color=_jitter(rng, _pick(rng, CLOTHING_COLORS), 12),
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
            _random_color(rng, 30, 230),
            _random_color(rng, 30, 230),
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


def _background(
    rng: np.random.Generator, camera: CameraStyle, width: int, height: int
) -> np.ndarray:
    first = np.asarray(_jitter(rng, camera.background_colors[0], 12), dtype=np.float32)
    second = np.asarray(_jitter(rng, camera.background_colors[1], 12), dtype=np.float32)
    canvas = np.empty((height, width, 3), dtype=np.float32)
    canvas[:] = first
    period = max(3, round(camera.background_period * height))
    offset = int(rng.integers(period))
    if camera.background == "gradient":
        t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        canvas = first * (1 - t) + second * t + np.zeros((1, width, 1), dtype=np.float32)
    elif camera.background == "floor":
        horizon = int(height * (camera.horizon + rng.uniform(-0.04, 0.04)))
        canvas[horizon:] = second
        canvas[horizon + offset % 7 :: max(4, period // 2)] *= 0.8
    elif camera.background == "tiles":
        canvas[offset::period] = second
        canvas[:, offset % max(1, period // 2) :: max(2, period // 2)] = second
    elif camera.background == "stripes":
        band = max(2, period // 2)
        for start in range(offset - period, width, period):
            canvas[:, max(0, start) : max(0, start + band)] = second
    if camera.texture > 0:
        coarse = Image.fromarray(
            rng.integers(0, 256, size=(6, 3, 3), dtype=np.uint8), mode="RGB"
        ).resize((width, height), Image.Resampling.BILINEAR)
        canvas += (np.asarray(coarse, dtype=np.float32) - 127.5) * (camera.texture / 127.5)
    return canvas


class _Figure:
    """Geometry of one standing person, in canvas pixels, with lean applied."""

    def __init__(
        self, rng: np.random.Generator, look: Appearance, width: int, height: int, scale: float
    ) -> None:
        self.unit = height * float(np.clip(scale + rng.uniform(-0.05, 0.05), 0.6, 0.98))
        u = self.unit
        spare = height - u
        self.top = spare * float(rng.uniform(0.2, 0.8))
        self.feet_y = self.top + 0.97 * u
        self.cx = width / 2 + float(rng.uniform(-0.06, 0.06)) * width
        self.lean = float(rng.uniform(-0.07, 0.07))
        self.head_r = 0.062 * u * look.head_size
        self.head = self.at(0.0, 0.075)
        self.shoulder_y = 0.165
        self.hip_y = 0.52
        self.shoulder_w = 0.125 * look.build
        self.hip_w = 0.1 * look.build
        swing = rng.uniform(-0.07, 0.07, size=2)
        spread = rng.uniform(0.0, 0.06, size=2)
        self.arms = [
            [
                self.at(side * (self.shoulder_w - 0.02), self.shoulder_y + 0.02),
                self.at(side * (self.shoulder_w + 0.02 + spread[i] / 2) + swing[i] / 2, 0.35),
                self.at(side * (self.shoulder_w + 0.02 + spread[i]) + swing[i], 0.52),
            ]
            for i, side in enumerate((-1, 1))
        ]
        stride = float(rng.uniform(-0.09, 0.09))
        self.legs = [
            [
                self.at(side * self.hip_w * 0.5, self.hip_y),
                self.at(side * self.hip_w * 0.55 + side * stride / 2, 0.74),
                self.at(side * self.hip_w * 0.6 + side * stride, 0.95),
            ]
            for side in (-1, 1)
        ]

    def at(self, dx: float, dy: float) -> tuple[float, float]:
        """Map body coordinates (fractions of height, from the head top) to pixels."""
        y = self.top + dy * self.unit
        x = self.cx + dx * self.unit + (self.feet_y - y) * self.lean
        return (x, y)

    def px(self, fraction: float) -> int:
        return max(1, round(fraction * self.unit))


def _torso(image: Image.Image, figure: _Figure, look: Appearance) -> None:
    corners = [
        figure.at(-figure.shoulder_w, figure.shoulder_y),
        figure.at(figure.shoulder_w, figure.shoulder_y),
        figure.at(figure.hip_w, figure.hip_y + 0.02),
        figure.at(-figure.hip_w, figure.hip_y + 0.02),
    ]
    xs = [x for x, _ in corners]
    ys = [y for _, y in corners]
    left, top = int(min(xs)), int(min(ys))
    size = (int(max(xs)) - left + 2, int(max(ys)) - top + 2)
    layer = Image.new("RGB", size, look.upper)
    draw = ImageDraw.Draw(layer)
    step = figure.px(look.pattern_scale)
    second = look.upper_secondary
    if look.pattern == "stripes":
        for y in range(0, size[1], 2 * step):
            draw.rectangle([0, y, size[0], y + step - 1], fill=second)
    elif look.pattern == "checks":
        for y in range(0, size[1], step):
            for x in range((y // step) % 2 * step, size[0], 2 * step):
                draw.rectangle([x, y, x + step - 1, y + step - 1], fill=second)
    elif look.pattern == "logo":
        r = figure.px(0.045)
        cx, cy = size[0] / 2, size[1] * 0.3
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=second)
    elif look.pattern == "jacket":
        half = figure.px(0.035)
        draw.rectangle([size[0] / 2 - half, 0, size[0] / 2 + half, size[1]], fill=second)
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon([(x - left, y - top) for x, y in corners], fill=255)
    image.paste(layer, (left, top), mask)


def _draw_person(image: Image.Image, figure: _Figure, look: Appearance, tint: Color) -> None:
    draw = ImageDraw.Draw(image)

    def shade(color: Color) -> Color:
        r, g, b = (min(255, max(0, c + t)) for c, t in zip(color, tint, strict=True))
        return (r, g, b)

    side = look.carried_side
    if look.carried == "backpack":
        x0, y0 = figure.at(side * (figure.shoulder_w + 0.06), figure.shoulder_y + 0.03)
        x1, y1 = figure.at(side * (figure.shoulder_w - 0.06), figure.shoulder_y + 0.27)
        draw.rectangle([min(x0, x1), y0, max(x0, x1), y1], fill=shade(look.carried_color))

    leg_w = figure.px(0.075)
    arm_w = figure.px(0.05)
    skin = shade(look.skin)
    lower = shade(look.lower)
    for leg in figure.legs:
        if look.lower_style == "trousers":
            draw.line(leg, fill=lower, width=leg_w, joint="curve")
        else:
            draw.line(leg, fill=skin, width=int(leg_w * 0.85), joint="curve")
            if look.lower_style == "shorts":
                knee = leg[1]
                mid = ((leg[0][0] + knee[0]) / 2, (leg[0][1] + knee[1]) / 2 + figure.px(0.03))
                draw.line([leg[0], mid], fill=lower, width=leg_w)
        foot_x, foot_y = leg[2]
        half = figure.px(0.045)
        draw.ellipse(
            [foot_x - half, foot_y - half / 2, foot_x + half, foot_y + half / 2],
            fill=shade(look.shoes),
        )
    if look.lower_style == "skirt":
        draw.polygon(
            [
                figure.at(-figure.hip_w, figure.hip_y - 0.01),
                figure.at(figure.hip_w, figure.hip_y - 0.01),
                figure.at(figure.hip_w * 1.6, 0.74),
                figure.at(-figure.hip_w * 1.6, 0.74),
            ],
            fill=lower,
        )
    else:
        draw.polygon(
            [
                figure.at(-figure.hip_w, figure.hip_y - 0.01),
                figure.at(figure.hip_w, figure.hip_y - 0.01),
                figure.at(figure.hip_w, figure.hip_y + 0.06),
                figure.at(-figure.hip_w, figure.hip_y + 0.06),
            ],
            fill=lower,
        )

    neck = figure.at(0.0, 0.15)
    draw.line([figure.head, neck], fill=skin, width=figure.px(0.04))
    _torso(image, figure, look)
    upper = shade(look.upper)
    for arm in figure.arms:
        draw.line(arm, fill=skin, width=arm_w, joint="curve")
        sleeve = arm if look.long_sleeves else arm[:2]
        draw.line(sleeve, fill=upper, width=arm_w + 1, joint="curve")
        hand_x, hand_y = arm[2]
        r = arm_w * 0.6
        draw.ellipse([hand_x - r, hand_y - r, hand_x + r, hand_y + r], fill=skin)

    hx, hy = figure.head
    r = figure.head_r
    hair = shade(look.hair)
    if look.hair_style == "long":
        draw.rectangle([hx - r * 1.05, hy, hx + r * 1.05, hy + r * 2.2], fill=hair)
    draw.ellipse([hx - r * 0.85, hy - r, hx + r * 0.85, hy + r], fill=skin)
    if look.hair_style != "bald":
        draw.chord([hx - r * 0.9, hy - r * 1.08, hx + r * 0.9, hy + r * 0.9], 180, 360, fill=hair)
    if look.hat is not None:
        hat = shade(look.hat)
        draw.chord([hx - r * 0.95, hy - r * 1.25, hx + r * 0.95, hy + r * 0.6], 180, 360, fill=hat)
        draw.rectangle([hx - r * 1.35, hy - r * 0.4, hx + r * 1.35, hy - r * 0.2], fill=hat)

    if look.carried == "bag":
        strap_from = figure.at(-side * figure.shoulder_w * 0.7, figure.shoulder_y)
        bx, by = figure.at(side * (figure.shoulder_w + 0.02), 0.47)
        bag = shade(look.carried_color)
        draw.line([strap_from, (bx, by)], fill=bag, width=figure.px(0.012))
        w, h = figure.px(0.08), figure.px(0.1)
        draw.rectangle([bx - w / 2, by, bx + w / 2, by + h], fill=bag)
    elif look.carried == "backpack":
        strap = shade(look.carried_color)
        for s in (-1, 1):
            draw.line(
                [
                    figure.at(s * figure.shoulder_w * 0.5, figure.shoulder_y),
                    figure.at(s * figure.shoulder_w * 0.6, figure.shoulder_y + 0.17),
                ],
                fill=strap,
                width=figure.px(0.018),
            )


def _occlude(image: Image.Image, rng: np.random.Generator) -> None:
    width, height = image.size
    draw = ImageDraw.Draw(image)
    color = _random_color(rng, 20, 200)
    if rng.random() < 0.5:
        pole = int(width * rng.uniform(0.07, 0.16))
        x = int(rng.integers(0, max(1, width - pole)))
        draw.rectangle([x, 0, x + pole, height], fill=color)
    else:
        box_h = int(height * rng.uniform(0.18, 0.4))
        box_w = int(width * rng.uniform(0.5, 1.0))
        x = int(rng.integers(-box_w // 3, width - box_w // 2))
        draw.rectangle([x, height - box_h, x + box_w, height], fill=color)


def render_crop(look: Appearance, camera: CameraStyle, rng: np.random.Generator) -> Image.Image:
    """Render ``look`` as seen by ``camera``; ``rng`` supplies the per-image variation."""
    width = round(BASE_WIDTH * rng.uniform(0.88, 1.12))
    height = round(BASE_HEIGHT * rng.uniform(0.9, 1.1))
    resolution = float(np.clip(camera.resolution + rng.uniform(-0.05, 0.05), 0.4, 1.0))
    canvas_w, canvas_h = max(16, round(width * resolution)), max(32, round(height * resolution))
    background = _background(rng, camera, canvas_w, canvas_h)
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), mode="RGB")
    figure = _Figure(rng, look, canvas_w, canvas_h, camera.scale)
    tint = _jitter(rng, (0, 0, 0), 6)
    _draw_person(image, figure, look, tint)
    if rng.random() < camera.occlusion:
        _occlude(image, rng)
    if camera.mirror:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    pixels = np.asarray(image, dtype=np.float32)
    gain = camera.gain * float(rng.uniform(0.9, 1.1))
    pixels = pixels * (gain * np.asarray(camera.cast, dtype=np.float32))
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * camera.noise
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
    blur = camera.blur + float(rng.uniform(0.0, 0.4))
    if blur > 0.3:
        image = image.filter(ImageFilter.GaussianBlur(blur * resolution))
    if (canvas_w, canvas_h) != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return image


def render_fragment(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Cut a bad detection out of a crop: a sliver that shows too little of anyone."""
    width, height = image.size
    frac = float(rng.uniform(0.25, 0.45))
    if rng.random() < 0.5:
        top = int(rng.integers(0, int(height * (1 - frac))))
        box = (0, top, width, top + int(height * frac))
    else:
        left = int(rng.integers(0, int(width * (1 - frac * 1.5)) + 1))
        box = (left, 0, left + int(width * frac * 1.5), height)
    return image.crop(box).resize((width, height), Image.Resampling.BILINEAR)
