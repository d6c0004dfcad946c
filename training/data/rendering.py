"""Compose person crops as a camera sees them, and cut bad detections out of them.

The synthetic data exists so training, evaluation and the service can be tested
end to end without downloading Market-1501. For that to mean anything the task
must be neither trivial nor impossible: `training.data.appearance` fixes what
is learnable (a person's look) and what is nuisance (a camera's style), and this
module puts a drawn person (`training.data.figure`) into the camera's scene,
then applies its light, colour cast, noise, blur and resolution. Everything
random is drawn from a numpy Generator handed in by the caller, so one crop
never depends on the order in which others were drawn.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.data.appearance import Appearance, CameraStyle, jitter_color, random_color
from training.data.figure import Figure, draw_person

BASE_WIDTH = 128
BASE_HEIGHT = 256


def _background(
    rng: np.random.Generator, camera: CameraStyle, width: int, height: int
) -> np.ndarray:
    """The camera's scene behind the person, as float RGB (texture may exceed 0..255)."""
    first = np.asarray(jitter_color(rng, camera.background_colors[0], 12), dtype=np.float32)
    second = np.asarray(jitter_color(rng, camera.background_colors[1], 12), dtype=np.float32)
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


def _occlude(image: Image.Image, rng: np.random.Generator) -> list[int]:
    """Hide part of the person behind a pole or a box, as street furniture does.

    Returns the occluder's rectangle ``[x0, y0, x1, y1]`` (inclusive, as PIL draws it).
    """
    width, height = image.size
    draw = ImageDraw.Draw(image)
    color = random_color(rng, 20, 200)
    if rng.random() < 0.5:
        pole = int(width * rng.uniform(0.07, 0.16))
        x = int(rng.integers(0, max(1, width - pole)))
        box = [x, 0, x + pole, height]
    else:
        box_h = int(height * rng.uniform(0.18, 0.4))
        box_w = int(width * rng.uniform(0.5, 1.0))
        x = int(rng.integers(-box_w // 3, width - box_w // 2))
        box = [x, height - box_h, x + box_w, height]
    draw.rectangle(box, fill=color)
    return box


def _silhouette(figure: Figure, look: Appearance, size: tuple[int, int]) -> Image.Image:
    """Where the person is drawn, as a mode "1" image: painted onto black and onto white,
    a pixel the person covers is the same on both, whatever its colour."""
    black, white = Image.new("RGB", size, (0, 0, 0)), Image.new("RGB", size, (255, 255, 255))
    for canvas in (black, white):
        draw_person(canvas, figure, look, (0, 0, 0))
    same = (np.asarray(black) == np.asarray(white)).all(axis=2)
    return Image.fromarray(same)


def render_crop(look: Appearance, camera: CameraStyle, rng: np.random.Generator) -> Image.Image:
    """Render ``look`` as seen by ``camera``; ``rng`` supplies the per-image variation."""
    return _render(look, camera, rng, silhouette=False)[0]


def render_crop_with_silhouette(
    look: Appearance, camera: CameraStyle, rng: np.random.Generator
) -> tuple[Image.Image, np.ndarray]:
    """The same crop as `render_crop` with the same ``rng``, and where the person shows in it.

    The silhouette is a boolean (height, width) array: the drawn person minus whatever
    occluder hides part of them. It is the ground truth a spatial attention mask is
    measured against (``benchmarks/attention_silhouette.py``).
    """
    image, silhouette = _render(look, camera, rng, silhouette=True)
    assert silhouette is not None
    return image, silhouette


def _render(
    look: Appearance, camera: CameraStyle, rng: np.random.Generator, *, silhouette: bool
) -> tuple[Image.Image, np.ndarray | None]:
    width = round(BASE_WIDTH * rng.uniform(0.88, 1.12))
    height = round(BASE_HEIGHT * rng.uniform(0.9, 1.1))
    resolution = float(np.clip(camera.resolution + rng.uniform(-0.05, 0.05), 0.4, 1.0))
    canvas_w, canvas_h = max(16, round(width * resolution)), max(32, round(height * resolution))
    background = _background(rng, camera, canvas_w, canvas_h)
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), mode="RGB")
    figure = Figure(rng, look, canvas_w, canvas_h, camera.scale)
    tint = jitter_color(rng, (0, 0, 0), 6)
    draw_person(image, figure, look, tint)
    person = _silhouette(figure, look, image.size) if silhouette else None
    if rng.random() < camera.occlusion:
        box = _occlude(image, rng)
        if person is not None:
            ImageDraw.Draw(person).rectangle(box, fill=0)
    if camera.mirror:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        person = person.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if person is not None else None

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
        person = (
            person.resize((width, height), Image.Resampling.NEAREST) if person is not None else None
        )
    return image, None if person is None else np.asarray(person, dtype=bool)


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
