"""Draw one standing person onto a canvas: body geometry, clothing, hair, accessories.

Geometry is in fractions of the person's height from the top of the head, so one
`Appearance` looks the same at every camera's scale; the per-crop pose (lean,
arm swing, stride, position) comes from the rng handed in.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from training.data.appearance import Appearance, Color


class Figure:
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


def _torso(image: Image.Image, figure: Figure, look: Appearance) -> None:
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


def draw_person(image: Image.Image, figure: Figure, look: Appearance, tint: Color) -> None:
    """Paint ``look`` in ``figure``'s pose onto ``image``.

    ``tint`` shifts every colour slightly, so the same clothes differ a little from
    crop to crop as they do under real light.
    """
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
