"""Time the data path: synthetic generation, dataset validation, and training batches.

    .venv/bin/python benchmarks/data_loading.py
    .venv/bin/python benchmarks/data_loading.py --train-ids 200 --workers 0 2

Generates a synthetic Market-1501 folder in a temporary directory, then reports
wall-clock rates for (1) writing it, (2) constructing ``ReIDImageDataset`` over the
training split (which decodes every image once to find broken files), and (3)
iterating one epoch of P×K batches through the training transform with each
requested number of DataLoader workers. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from model.evaluation.layouts.market import load_market1501
from model.preprocessing import DEFAULT_INPUT_SIZE
from training.data.dataset import ReIDImageDataset
from training.data.synthetic import generate_synthetic_market
from training.sampler import IdentityBatchSampler
from training.transforms import build_train_transform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-ids", type=int, default=100)
    parser.add_argument("--test-ids", type=int, default=60)
    parser.add_argument("--per-camera", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    torch.manual_seed(0)
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "market"
        started = time.perf_counter()
        generate_synthetic_market(
            root,
            num_train_ids=args.train_ids,
            num_test_ids=args.test_ids,
            images_per_id_per_camera=args.per_camera,
            seed=0,
        )
        seconds = time.perf_counter() - started
        images = sum(1 for path in root.rglob("*.jpg"))
        results["generate"] = {
            "images": images,
            "seconds": round(seconds, 2),
            "images_per_second": round(images / seconds, 1),
        }

        splits = load_market1501(root)
        started = time.perf_counter()
        dataset = ReIDImageDataset(splits.train, build_train_transform(DEFAULT_INPUT_SIZE))
        seconds = time.perf_counter() - started
        results["validate"] = {
            "images": len(dataset),
            "ms_per_image": round(1000 * seconds / len(dataset), 3),
        }

        for workers in args.workers:
            sampler = IdentityBatchSampler(dataset.labels, 16, 4, seed=0)
            loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers)
            started = time.perf_counter()
            count = sum(batch[0].shape[0] for batch in loader)
            seconds = time.perf_counter() - started
            results[f"train_batches_workers_{workers}"] = {
                "images": count,
                "images_per_second": round(count / seconds, 1),
            }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
