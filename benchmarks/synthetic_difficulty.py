"""How hard is a synthetic set? Score features that know nothing about identity.

    .venv/bin/python -m training.data.synthetic /tmp/syn --train-ids 60 --test-ids 40 --seed 0
    .venv/bin/python benchmarks/synthetic_difficulty.py /tmp/syn [--checkpoint RUN/best]

Reports Market-1501-protocol mAP / rank-1 on the set's query and gallery for raw
pixels (each crop shrunk to 16×32, cosine), for a deterministically initialised
untrained network, and optionally for a trained checkpoint. A useful synthetic set
keeps the first two near chance (camera nuisance dominates) while training lifts
the last one well above them. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from model.checkpoint import load_checkpoint, untrained_model
from model.compute import ComputeSettings
from model.config import ModelConfig
from model.evaluation.features import extract_features
from model.evaluation.layouts.market import load_market1501
from model.evaluation.layouts.records import ImageRecord
from model.evaluation.metrics import compute_reid_metrics
from model.network import ReIDNet
from model.preprocessing import decode_image, preprocess


def _images(records: list[ImageRecord]) -> list[Image.Image]:
    return [decode_image(record.path.read_bytes()) for record in records]


def _pixels(images: list[Image.Image]) -> np.ndarray:
    return np.stack(
        [np.asarray(image.resize((16, 32)), dtype=np.float32).ravel() for image in images]
    )


def _embed(network: ReIDNet, images: list[Image.Image]) -> torch.Tensor:
    batches = (
        torch.stack(
            [preprocess(image, network.config.input_size) for image in images[start : start + 64]]
        )
        for start in range(0, len(images), 64)
    )
    return extract_features(network, batches, compute=ComputeSettings(torch.device("cpu")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--last-stride", type=int, default=2)
    parser.add_argument("--checkpoint", type=Path, help="trained checkpoint directory to score")
    args = parser.parse_args()
    splits = load_market1501(args.data_dir)
    query, gallery = _images(splits.query), _images(splits.gallery)
    pids_and_camids = (
        [r.pid for r in splits.query],
        [r.pid for r in splits.gallery],
        [r.camid for r in splits.query],
        [r.camid for r in splits.gallery],
    )

    def score(query_features: object, gallery_features: object) -> dict[str, float]:
        metrics = compute_reid_metrics(query_features, gallery_features, *pids_and_camids)
        return {"mAP": round(metrics.mAP, 3), "rank1": round(metrics.rank1, 3)}

    results = {
        "data": str(args.data_dir),
        "query": len(query),
        "gallery": len(gallery),
        "raw_pixels": score(_pixels(query), _pixels(gallery)),
    }
    config = ModelConfig(arch=args.arch, last_stride=args.last_stride)
    untrained, _ = untrained_model(config, seed=0)
    results[f"untrained_{args.arch}"] = score(_embed(untrained, query), _embed(untrained, gallery))
    if args.checkpoint is not None:
        trained, _ = load_checkpoint(args.checkpoint)
        results["checkpoint"] = score(_embed(trained, query), _embed(trained, gallery))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
