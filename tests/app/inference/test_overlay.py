"""The attention overlay: a jet-like ramp on the fixed [0, 1] scale, blended half and half."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.inference.overlay import display_size, jet, render_overlay, upsample

DARK_BLUE, GREEN, DARK_RED = (0, 0, 128), (128, 255, 128), (128, 0, 0)


def overlay(picture: Image.Image, mask: np.ndarray) -> np.ndarray:
    image = Image.open(io.BytesIO(render_overlay(picture, mask)))
    assert image.format == "PNG" and image.mode == "RGB"
    return np.asarray(image).astype(int)


def test_jet_runs_from_dark_blue_through_green_to_dark_red() -> None:
    colours = jet(np.array([0.0, 0.25, 0.5, 0.75, 1.0]))
    assert colours.dtype == np.uint8
    assert [tuple(c) for c in colours] == [
        DARK_BLUE,
        (0, 128, 255),
        GREEN,
        (255, 128, 0),
        DARK_RED,
    ]
    # Out-of-range values are clipped, not wrapped.
    assert [tuple(c) for c in jet(np.array([-3.0, 7.0]))] == [DARK_BLUE, DARK_RED]


def test_a_flat_mask_keeps_its_own_colour_and_is_never_stretched() -> None:
    black = Image.new("RGB", (8, 16))
    for value in (0.0, 0.3, 0.7, 1.0):
        pixels = overlay(black, np.full((4, 2), value, np.float32))
        expected = np.rint(jet(np.array(value)).astype(float) / 2)
        assert (pixels == expected).all(), value
    # A mask spanning only 0.4 to 0.6 is drawn at 0.4 and 0.6, not stretched to 0 and 1.
    mask = np.array([[0.4], [0.6]], np.float32)
    pixels = overlay(Image.new("RGB", (1, 2)), mask)
    assert (pixels[:, 0] == np.rint(jet(mask[:, 0]).astype(float) / 2)).all()


def test_the_crop_and_the_colours_are_blended_half_and_half() -> None:
    grey = Image.new("RGB", (10, 20), (100, 150, 200))
    pixels = overlay(grey, np.ones((4, 2), np.float32))
    assert (pixels == np.rint((np.array([100, 150, 200]) + DARK_RED) / 2)).all()


def test_the_mask_is_upsampled_bilinearly_over_the_whole_crop() -> None:
    mask = np.array([[0.0], [1.0]], np.float32)  # two cells: the top half 0, the bottom 1
    # Bilinear between cell centres (rows 16 and 48 of 64), clamped beyond them.
    expected = np.clip((np.arange(64) + 0.5) / 32 - 0.5, 0.0, 1.0)
    values = upsample(mask, (4, 64))
    assert values.shape == (64, 4)
    np.testing.assert_allclose(values, np.repeat(expected[:, None], 4, axis=1), atol=1e-5)
    pixels = overlay(Image.new("RGB", (4, 64)), mask)
    colours = np.rint(jet(expected).astype(float) / 2)
    assert np.abs(pixels[:, 0] - colours).max() <= 1


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        ((64, 128), (64, 128)),
        ((512, 512), (512, 512)),
        ((1024, 2048), (256, 512)),
        ((3000, 10), (512, 2)),
        ((5000, 1), (512, 1)),
    ],
)
def test_the_long_side_is_at_most_512_and_never_enlarged(
    size: tuple[int, int], shown: tuple[int, int]
) -> None:
    assert display_size(*size) == shown
    assert Image.open(
        io.BytesIO(render_overlay(Image.new("RGB", size), np.zeros((16, 8), np.float32)))
    ).size == (shown)
