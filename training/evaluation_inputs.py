"""Embed a dataset's query and gallery crops with a checkpoint, for ``training.evaluate``.

Crops go through the one shared preprocessing (model.preprocessing), decoded on a
thread pool while the previous batch is embedded. A crop that does not decode
stops the run: silently dropping test images would change the benchmark.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from model.compute import ComputeSettings
from model.evaluation.features import extract_features
from model.evaluation.layouts.catalogue import read_layout
from model.evaluation.layouts.market import read_market_split
from model.evaluation.layouts.records import DatasetLayoutError, ImageRecord
from model.evaluation.layouts.split_folders import GALLERY_FOLDER, QUERY_FOLDER
from model.preprocessing import ImageDecodeError, InputSize, decode_image, preprocess
from training.usage import UsageError

DEFAULT_BATCH_SIZE = 64


def embed_query_gallery(
    args: argparse.Namespace, device: torch.device
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    root: Path = args.data_dir
    if not root.is_dir():
        raise UsageError(f"--data-dir: {root} does not exist or is not a directory")
    if args.layout in (None, "market"):
        splits = _read_market_query_gallery(root)
    else:
        splits = _read_query_gallery(root, args.layout)
    # Imported here: the network pulls in torchvision, seconds of start-up that scoring a
    # features file does not need.
    from model.checkpoint import CheckpointError, load_checkpoint

    try:
        network, card = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise UsageError(f"--checkpoint: {error}") from None

    arrays: dict[str, np.ndarray] = {}
    batch_size = args.batch_size or DEFAULT_BATCH_SIZE
    compute = ComputeSettings.resolve(device, args.amp, args.amp)
    for split, records in splits.items():
        batches = _image_batches(records, network.config.input_size, batch_size, args.workers)
        progress = tqdm(
            batches,
            desc=f"embedding {split}",
            unit="batch",
            disable=None,
            total=-(-len(records) // batch_size),
            file=sys.stderr,
        )
        try:
            features = extract_features(network, progress, compute=compute, flip=args.flip)
        finally:
            progress.close()
        arrays[f"{split}_features"] = features.numpy()
        arrays[f"{split}_pids"] = np.array([record.pid for record in records], dtype=np.int64)
        arrays[f"{split}_camids"] = np.array([record.camid for record in records], dtype=np.int64)
    source = {
        "checkpoint": str(args.checkpoint),
        "model_version": card.version,
        "trained": card.trained,
        "data_dir": str(root),
        # bf16 features move in the last digits with the batch they were computed in,
        # so a report says which batch size (and precision) produced it.
        "batch_size": batch_size,
        "bf16": compute.bf16,
    }
    return arrays, source


def _read_market_query_gallery(root: Path) -> dict[str, list[ImageRecord]]:
    """Market-1501's query and gallery; its training folder is not needed to evaluate."""
    missing = [name for name in (QUERY_FOLDER, GALLERY_FOLDER) if not (root / name).is_dir()]
    if missing:
        raise UsageError(
            f"--data-dir: {root} is not a Market-1501 folder: missing "
            f"{' and '.join(name + '/' for name in missing)}"
        )
    try:
        splits = {
            "query": read_market_split(root / QUERY_FOLDER),
            "gallery": read_market_split(root / GALLERY_FOLDER),
        }
    except DatasetLayoutError as error:
        raise UsageError(f"--data-dir: {error}") from None
    for split, records in splits.items():
        if not records:
            raise UsageError(f"--data-dir: the {split} folder of {root} holds no usable images")
    return splits


def _read_query_gallery(root: Path, layout: str) -> dict[str, list[ImageRecord]]:
    """The query and gallery of any other evaluation layout, read whole by its reader."""
    try:
        read = read_layout(layout, root)
    except DatasetLayoutError as error:
        raise UsageError(f"--data-dir: {error}") from None
    return {"query": read.query, "gallery": read.gallery}


def _image_batches(
    records: list[ImageRecord], size: InputSize, batch_size: int, workers: int
) -> Iterator[torch.Tensor]:
    """Decode crops on a thread pool, preparing the next batch while one is being embedded.

    PIL releases the GIL while decoding and resizing, so threads keep a GPU fed without
    worker processes. A crop that does not decode stops the run: silently dropping test
    images would change the benchmark being reported.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def submit(start: int) -> list[Future[torch.Tensor]]:
            chunk = records[start : start + batch_size]
            return [pool.submit(_load_crop, record.path, size) for record in chunk]

        pending = submit(0)
        for start in range(batch_size, len(records) + batch_size, batch_size):
            upcoming = submit(start)
            yield torch.stack([future.result() for future in pending])
            pending = upcoming


def _load_crop(path: Path, size: InputSize) -> torch.Tensor:
    try:
        return preprocess(decode_image(path.read_bytes()), size)
    except (ImageDecodeError, OSError) as error:
        raise UsageError(f"--data-dir: cannot read image {path}: {error}") from None
