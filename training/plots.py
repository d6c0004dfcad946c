"""Figures written beside a run: CMC curve, attention overlays, ranked lists.

They are what a person looks at first to judge a model — a CMC curve that is
good on average can hide a network attending to the background, or one that
ranks by clothing colour alone. Matplotlib runs on the Agg backend, so plotting
works on headless training machines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from PIL import Image

from model.preprocessing import resize

if TYPE_CHECKING:
    from model.evaluation.layouts.records import ImageRecord
    from model.network import ReIDNet
    from training.engine import EvaluationResult

MATCH_COLOUR = "#1a9850"
MISMATCH_COLOUR = "#d73027"
THUMB_SIZE = (64, 128)  # width, height of one crop in the ranked-list grid
CELL_PAD = 4  # border width around a gallery hit
LABEL_HEIGHT = 14
CELL_SPACING = 3  # white gap between neighbouring cells


@dataclass(frozen=True)
class RankedRow:
    """One query and its best gallery hits, best first."""

    query_image: Image.Image
    query_pid: int
    hit_images: Sequence[Image.Image]
    hit_pids: Sequence[int]


def plot_cmc(cmc: Sequence[float], path: Path, *, title: str = "CMC") -> Path:
    """Cumulative matching characteristic: P(true match within the top k)."""
    ranks = np.arange(1, len(cmc) + 1)
    figure, axes = plt.subplots(figsize=(5, 3.6), dpi=120)
    axes.plot(ranks, np.asarray(cmc) * 100.0, marker="o", markersize=3)
    axes.set_xlabel("rank k")
    axes.set_ylabel("matching rate (%)")
    axes.set_ylim(0, 101)
    axes.set_xlim(1, max(2, len(cmc)))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)
    axes.set_title(title)
    return _save(figure, path)


def plot_attention(
    crops: Sequence[Image.Image],
    masks: Sequence[np.ndarray],
    path: Path,
    *,
    mean_mask: np.ndarray | None = None,
) -> Path:
    """Each crop beside its spatial attention mask, then the mean mask of the whole set.

    ``masks`` are (h, w) arrays in [0, 1] at the attention map's own resolution,
    upsampled to the crop. Every mask is drawn on the one fixed [0, 1] scale: stretching
    each to its own range once hid that every crop got the same map. The last panel,
    the mean mask (``mean_mask``, e.g. over every query crop), makes such a collapse
    visible at a glance: the overlays then all look like it.
    """
    if len(crops) != len(masks) or not crops:
        raise ValueError("need one mask per crop and at least one crop")
    columns = len(crops) + (mean_mask is not None)
    figure, axes = plt.subplots(2, columns, figsize=(1.6 * columns, 6.2), dpi=120, squeeze=False)
    size = crops[0].size
    for column, (crop, mask) in enumerate(zip(crops, masks, strict=True)):
        axes[0, column].imshow(crop)
        axes[1, column].imshow(crop)
        axes[1, column].imshow(_upsampled(mask, crop.size), cmap="jet", alpha=0.5, vmin=0, vmax=1)
    if mean_mask is not None:
        axes[0, -1].text(0.5, 0.5, "mean mask\nof the set", ha="center", va="center", fontsize=8)
        axes[1, -1].imshow(_upsampled(mean_mask, size), cmap="jet", vmin=0.0, vmax=1.0)
    for axis in axes.flat:
        axis.set_axis_off()
    axes[0, 0].set_title("crop", fontsize=8, loc="left")
    axes[1, 0].set_title("spatial attention (0 to 1)", fontsize=8, loc="left")
    return _save(figure, path)


def _upsampled(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A [0, 1] mask resized to ``size`` (width, height) for drawing; values are not rescaled."""
    values = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
    return np.asarray(Image.fromarray(values, mode="F").resize(size, Image.Resampling.BILINEAR))


def plot_ranked_lists(rows: Sequence[RankedRow], path: Path) -> Path:
    """Each row: a query, then its top gallery hits, bordered green (same pid) or red.

    The grid is composed as one pixel canvas and drawn with a single ``imshow``:
    one axes per thumbnail made this figure the slowest part of a small run.
    """
    if not rows:
        raise ValueError("need at least one query row")
    columns = 1 + max(len(row.hit_images) for row in rows)
    cell_w = THUMB_SIZE[0] + 2 * CELL_PAD + CELL_SPACING
    cell_h = THUMB_SIZE[1] + 2 * CELL_PAD + LABEL_HEIGHT
    gap = 2 * CELL_PAD  # extra space after the query column
    canvas = np.full((cell_h * len(rows), cell_w * columns + gap, 3), 255, dtype=np.uint8)
    figure = plt.figure(figsize=(canvas.shape[1] / 100, canvas.shape[0] / 100), dpi=100)
    axes = figure.add_axes((0, 0, 1, 1))
    for r, row in enumerate(rows):
        top = r * cell_h + LABEL_HEIGHT
        cells = [(row.query_image, None), *zip(row.hit_images, row.hit_pids, strict=True)]
        for c, (image, pid) in enumerate(cells):
            left = c * cell_w + (gap if c else 0)
            if pid is not None:
                colour = _rgb(MATCH_COLOUR if pid == row.query_pid else MISMATCH_COLOUR)
                bottom, right = top + cell_h - LABEL_HEIGHT, left + cell_w - CELL_SPACING
                canvas[top:bottom, left:right] = colour
            thumb = np.asarray(image.convert("RGB").resize(THUMB_SIZE, Image.Resampling.BILINEAR))
            y, x = top + CELL_PAD, left + CELL_PAD
            canvas[y : y + THUMB_SIZE[1], x : x + THUMB_SIZE[0]] = thumb
            label = f"query {row.query_pid}" if pid is None else str(c)
            axes.text(left + cell_w / 2, top - 3, label, ha="center", va="bottom", fontsize=7)
    axes.imshow(canvas, interpolation="nearest")
    axes.set_axis_off()
    figure.savefig(Path(path))
    plt.close(figure)
    return Path(path)


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)


def _save(figure: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_run_plots(
    network: ReIDNet,
    result: EvaluationResult,
    query_records: Sequence[ImageRecord],
    gallery_records: Sequence[ImageRecord],
    output: Path,
    *,
    num_queries: int = 6,
    top_k: int = 10,
) -> list[Path]:
    """Write cmc.png, ranked_lists.png and (with spatial attention) attention.png.

    The attention figure shows the chosen queries' masks as the evaluation computed
    them (``result.query.spatial_masks``), and the mean mask over every query crop.

    Queries are spread evenly over the query set so the figure is the same for
    every evaluation of one run and comparable across runs.
    """
    output = Path(output)
    written = [
        plot_cmc(
            result.metrics.cmc[:20],
            output / "cmc.png",
            title=f"CMC (mAP {result.metrics.mAP:.3f}, rank-1 {result.metrics.rank1:.3f})",
        )
    ]
    query, gallery = result.query, result.gallery
    count = min(num_queries, len(query.features))
    if count == 0 or len(gallery.features) == 0:
        return written
    chosen = np.linspace(0, len(query.features) - 1, count).round().astype(int)
    chosen = np.unique(chosen)
    scores = query.features[chosen] @ gallery.features.T
    # Same person seen by the same camera is not a re-identification (Market protocol).
    same_view = (query.pids[chosen, None] == gallery.pids[None, :]) & (
        query.camids[chosen, None] == gallery.camids[None, :]
    )
    scores = scores.masked_fill(same_view, float("-inf"))
    rows = []
    for row, q in enumerate(chosen):
        valid = int((~same_view[row]).sum())
        order = scores[row].argsort(descending=True)[: min(top_k, valid)].tolist()
        rows.append(
            RankedRow(
                query_image=_thumbnail(query_records[q].path),
                query_pid=int(query.pids[q]),
                hit_images=[_thumbnail(gallery_records[g].path) for g in order],
                hit_pids=[int(gallery.pids[g]) for g in order],
            )
        )
    written.append(plot_ranked_lists(rows, output / "ranked_lists.png"))
    if query.spatial_masks is not None:
        size = network.config.input_size
        crops = [resize(Image.open(query_records[q].path), size) for q in chosen]
        masks = [query.spatial_masks[q, 0].numpy() for q in chosen]
        mean_mask = query.spatial_masks.mean(dim=0)[0].numpy()
        written.append(plot_attention(crops, masks, output / "attention.png", mean_mask=mean_mask))
    return written


def _thumbnail(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB").resize(THUMB_SIZE, Image.Resampling.BILINEAR)
