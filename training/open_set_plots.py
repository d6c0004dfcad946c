"""Open-set figures: the DET curve and the mated / non-mated score histograms.

The DET curve is drawn on log axes because the operating points that matter (FPIR 1%,
0.1%) are invisible on linear ones; the histogram shows *why* a threshold lands where
it does: how far the non-mated top scores reach into the mated ones. Matplotlib runs on
the Agg backend, as in training/plots.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from model.evaluation.open_set import DetCurve, OpenSetScores
from training.plots import MATCH_COLOUR, MISMATCH_COLOUR


def plot_det(curve: DetCurve, path: Path, *, marks: Sequence[tuple[float, float]] = ()) -> Path:
    """FNIR against FPIR (both log scale); ``marks`` are (FPIR, FNIR) operating points."""
    figure, axes = plt.subplots(figsize=(5, 4), dpi=120)
    visible = (curve.fpir > 0) & (curve.fnir > 0)
    axes.plot(curve.fpir[visible], curve.fnir[visible], drawstyle="steps-post")
    for fpir, fnir in marks:
        if fpir > 0 and fnir > 0:
            axes.plot([fpir], [fnir], marker="o", color=MISMATCH_COLOUR)
            axes.annotate(f"FPIR {fpir:.3g}", (fpir, fnir), fontsize=7, xytext=(4, 4),
                          textcoords="offset points")  # fmt: skip
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("FPIR (non-mated probes decided match)")
    axes.set_ylabel("FNIR (mated probes not matched correctly)")
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title("DET, rank 1")
    return _save(figure, path)


def plot_score_histograms(scores: OpenSetScores, path: Path) -> Path:
    """Top identity score of mated (correct and wrong top) and non-mated probes."""
    figure, axes = plt.subplots(figsize=(5, 3.6), dpi=120)
    every = np.concatenate([scores.mated_scores, scores.nonmated_scores])
    bins = np.linspace(float(every.min()), float(every.max()), 41)
    axes.hist(scores.mated_scores[scores.mated_correct], bins=bins, alpha=0.6,
              color=MATCH_COLOUR, label="mated, right identity on top", density=True)  # fmt: skip
    axes.hist(scores.nonmated_scores, bins=bins, alpha=0.6, color=MISMATCH_COLOUR,
              label="non-mated", density=True)  # fmt: skip
    wrong = scores.mated_scores[~scores.mated_correct]
    if len(wrong):
        axes.hist(wrong, bins=bins, histtype="step", color="black",
                  label="mated, wrong identity on top", density=True)  # fmt: skip
    axes.set_xlabel("best identity score (cosine)")
    axes.set_ylabel("density")
    axes.legend(fontsize=7)
    axes.grid(True, alpha=0.3)
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
