"""The run's figures are real PNGs that show what they claim."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.plots import (
    MATCH_COLOUR,
    MISMATCH_COLOUR,
    RankedRow,
    plot_attention,
    plot_cmc,
    plot_ranked_lists,
)


def _crop(value: int) -> Image.Image:
    return Image.new("RGB", (64, 128), (value, value, value))


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def test_cmc_png(tmp_path):
    path = plot_cmc([0.5, 0.7, 0.9, 1.0], tmp_path / "cmc.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 100


def test_attention_overlay_highlights_the_attended_region(tmp_path):
    mask = np.zeros((16, 8))
    mask[:8] = 1.0  # attend to the upper half only
    path = plot_attention([_crop(128), _crop(128)], [mask, mask], tmp_path / "attention.png")
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    # The jet colormap paints attended pixels red and the rest blue over a grey crop.
    red_dominant = (pixels[..., 0] - pixels[..., 2]) > 60
    blue_dominant = (pixels[..., 2] - pixels[..., 0]) > 60
    assert red_dominant.sum() > 200
    assert blue_dominant.sum() > 200
    assert np.argwhere(red_dominant)[:, 0].mean() < np.argwhere(blue_dominant)[:, 0].mean()


def test_attention_needs_one_mask_per_crop(tmp_path):
    with pytest.raises(ValueError):
        plot_attention([_crop(0)], [], tmp_path / "a.png")


def _colour_counts(path) -> tuple[int, int]:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)

    def count(colour: str) -> int:
        return int((np.abs(pixels - _rgb(colour)).sum(axis=-1) < 40).sum())

    return count(MATCH_COLOUR), count(MISMATCH_COLOUR)


def test_ranked_list_borders_matches_green_and_mismatches_red(tmp_path):
    def row(hit_pids: list[int]) -> RankedRow:
        return RankedRow(
            query_image=_crop(200),
            query_pid=3,
            hit_images=[_crop(200) for _ in hit_pids],
            hit_pids=hit_pids,
        )

    green, red = _colour_counts(plot_ranked_lists([row([3, 7, 3])], tmp_path / "mixed.png"))
    assert green > red > 0
    green, red = _colour_counts(plot_ranked_lists([row([3, 3, 3])], tmp_path / "all.png"))
    assert green > 0 and red == 0
    green, red = _colour_counts(plot_ranked_lists([row([1, 2, 4])], tmp_path / "none.png"))
    assert red > 0 and green == 0
