"""Does the spatial attention cover the person? IoU with synthetic crops' silhouettes.

    .venv/bin/python benchmarks/attention_silhouette.py --checkpoint runs/cpu/best
    .venv/bin/python benchmarks/attention_silhouette.py --checkpoint DIR --identities 80 \\
        --first-pid 1001 --cameras 4 --seed 0

The synthetic generator knows where it drew each person, so attention can be scored
against ground truth. Crops of identities the network never trained on (pids from
``--first-pid``) are rendered with their silhouettes (the drawn person minus any
occluder). Each crop's spatial mask, at layer3's resolution, is thresholded at its own
mean; the silhouette is reduced to the same grid (a cell is "person" when at least half
of its pixels are). The report gives the mean IoU per crop, and the same measure for one
**fixed** mask: the mean of all the masks, thresholded the same way. Attention that
follows each person beats the fixed mask; a collapsed attention equals it. It also
reports the collapse statistics of `model.evaluation.attention_maps`.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from PIL import Image

import model  # noqa: F401  (makes torchvision importable on CPU-only torch)
from model.checkpoint import load_checkpoint
from model.compute import ComputeSettings
from model.evaluation.attention_maps import mask_statistics
from model.evaluation.features import extract_features
from model.preprocessing import InputSize, preprocess
from training.data.synthetic import crop_rng, render_person_with_silhouette

BATCH_SIZE = 64


def silhouette_grid(silhouette: np.ndarray, size: InputSize, grid: tuple[int, int]) -> np.ndarray:
    """The silhouette resized with the crop to ``size``, then one bool per mask cell."""
    resized = Image.fromarray(silhouette).resize(
        (size.width, size.height), Image.Resampling.NEAREST
    )
    pixels = np.asarray(resized, dtype=np.float64)
    rows, columns = grid
    cells = pixels.reshape(rows, size.height // rows, columns, size.width // columns)
    return cells.mean(axis=(1, 3)) >= 0.5


def iou(first: np.ndarray, second: np.ndarray) -> float:
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 1.0


def run(args: argparse.Namespace) -> dict[str, object]:
    network, card = load_checkpoint(args.checkpoint)
    if not network.config.uses_spatial_attention:
        raise SystemExit(f"{args.checkpoint}: the network has no spatial attention")
    size = network.config.input_size
    compute = ComputeSettings.resolve(torch.device("cpu"), args.amp, args.amp)
    crops, silhouettes = [], []
    for pid in range(args.first_pid, args.first_pid + args.identities):
        for camid in range(1, args.cameras + 1):
            rng = crop_rng(args.seed, pid, camid, 0)
            crop, silhouette = render_person_with_silhouette(pid, camid, rng, seed=args.seed)
            crops.append(preprocess(crop, size))
            silhouettes.append(silhouette)
    batches = (
        torch.stack(crops[start : start + BATCH_SIZE]) for start in range(0, len(crops), BATCH_SIZE)
    )
    collected: list[torch.Tensor] = []
    extract_features(network, batches, compute=compute, spatial_masks=collected)
    masks = torch.cat(collected)[:, 0].numpy()
    grid = (masks.shape[1], masks.shape[2])
    truth = [silhouette_grid(s, size, grid) for s in silhouettes]
    per_crop = [iou(mask > mask.mean(), person) for mask, person in zip(masks, truth, strict=True)]
    mean_mask = masks.mean(axis=0)
    fixed = [iou(mean_mask > mean_mask.mean(), person) for person in truth]
    return {
        "checkpoint": str(args.checkpoint),
        "model_version": card.version,
        "crops": len(crops),
        "mask_grid": list(grid),
        "iou": round(float(np.mean(per_crop)), 4),
        "iou_fixed_mean_mask": round(float(np.mean(fixed)), 4),
        "mask_statistics": mask_statistics(torch.from_numpy(masks)).to_dict(),
        "command": " ".join(sys.argv),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory")
    parser.add_argument("--identities", type=int, default=60)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--first-pid", type=int, default=1001, help="unseen identities start here")
    parser.add_argument("--seed", type=int, default=0, help="the generator seed of the run")
    parser.add_argument("--amp", choices=("auto", "on", "off"), default="off")
    args = parser.parse_args(argv)
    if args.identities < 1 or args.cameras < 1:
        parser.error("--identities and --cameras must be >= 1")
    print(json.dumps(run(args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
