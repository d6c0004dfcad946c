"""Score a checkpoint, or saved features, under the Market-1501 retrieval protocol.

    python -m training.evaluate --checkpoint runs/x/best --data-dir data/market1501 --flip
    python -m training.evaluate --features features.npz --metric euclidean --output m.json

With ``--checkpoint`` the crops of ``query/`` and ``bounding_box_test/`` are decoded with
the shared preprocessing and embedded; ``--save-features`` keeps those embeddings in the
``.npz`` format that ``--features`` reads back, so other distances or re-ranking can be
tried without running the network again. The metrics (mAP, mINP, CMC; see
model/evaluation/metrics.py) are printed as JSON and optionally written to ``--output``.
Bad input ends with a usage error (exit status 2) that says what is wrong, never a
traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from model.compute import SWITCHES, ComputeSettings
from model.evaluation.features import extract_features
from model.evaluation.market_layout import (
    GALLERY_FOLDER,
    QUERY_FOLDER,
    DatasetLayoutError,
    ImageRecord,
    read_market_split,
)
from model.evaluation.metrics import DEFAULT_MAX_RANK, compute_reid_metrics
from model.preprocessing import ImageDecodeError, decode_image, preprocess
from training import evaluate_reranking

FEATURE_KEYS = (
    "query_features",
    "gallery_features",
    "query_pids",
    "gallery_pids",
    "query_camids",
    "gallery_camids",
)
DEFAULT_BATCH_SIZE = 64


class UsageError(Exception):
    """Input the user can fix; reported through argparse, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Market-1501-protocol evaluation (mAP, mINP, CMC) of a checkpoint on a "
        "Market-1501 folder, or of saved query/gallery features.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint",
        type=Path,
        metavar="DIR",
        help="checkpoint directory (model.safetensors + card)",
    )
    source.add_argument(
        "--features",
        type=Path,
        metavar="FILE.npz",
        help=f".npz with arrays {', '.join(FEATURE_KEYS)}",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help=f"Market-1501 root holding {QUERY_FOLDER}/ and {GALLERY_FOLDER}/ (with --checkpoint)",
    )
    parser.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    parser.add_argument(
        "--flip", action="store_true", help="add the mirrored crop's embedding (with --checkpoint)"
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        default=None,
        help=f"images per forward pass (default {DEFAULT_BATCH_SIZE}; with --checkpoint)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        default=min(8, os.cpu_count() or 1),
        help="image-decoding threads (default: CPU count, at most 8)",
    )
    parser.add_argument(
        "--device", default=None, help="torch device (default: cuda if available, else cpu)"
    )
    parser.add_argument(
        "--amp",
        choices=SWITCHES,
        default="auto",
        help="bf16 autocast with channels_last (default auto: on where bf16 is native)",
    )
    parser.add_argument(
        "--max-rank",
        type=_positive_int,
        default=DEFAULT_MAX_RANK,
        metavar="K",
        help=f"length of the reported CMC curve (default {DEFAULT_MAX_RANK})",
    )
    parser.add_argument(
        "--output", type=Path, metavar="FILE.json", help="also write the JSON report here"
    )
    parser.add_argument(
        "--save-features",
        type=Path,
        metavar="FILE.npz",
        help="write the extracted features as .npz (--checkpoint)",
    )
    evaluate_reranking.add_arguments(parser)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; returns the exit status (2 for usage errors) instead of exiting."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        try:
            report = _evaluate(args)
        except UsageError as error:
            parser.error(str(error))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    text = json.dumps(report, indent=2)
    print(text)
    if args.output is not None:
        _write_atomically(args.output, (text + "\n").encode())
    return 0


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    _check_arguments(args)
    try:
        rerank = evaluate_reranking.reranking_settings(args)
    except ValueError as error:
        raise UsageError(str(error)) from None
    device = _device(args.device)
    started = time.perf_counter()
    if args.features is not None:
        arrays = load_feature_file(args.features)
        source: dict[str, Any] = {"features": str(args.features)}
        extraction_s = 0.0
    else:
        arrays, source = _embed_market_folder(args, device)
        extraction_s = time.perf_counter() - started
        if args.save_features is not None:
            _write_feature_file(args.save_features, arrays)

    metrics_started = time.perf_counter()
    try:
        metrics = compute_reid_metrics(
            *(torch.from_numpy(arrays[key]).to(device) for key in FEATURE_KEYS),
            metric=args.metric,
            max_rank=args.max_rank,
            rerank=rerank,
            query_expansion=args.aqe,
        )
    except ValueError as error:
        raise UsageError(f"cannot evaluate: {error}") from None
    finished = time.perf_counter()
    return {
        **metrics.to_dict(),
        "metric": args.metric,
        "flip": args.flip,
        "rerank": None if rerank is None else rerank.to_dict(),
        "aqe": None if args.aqe is None else {"k": args.aqe},
        "source": source,
        "timing": {
            "feature_extraction_s": round(extraction_s, 3),
            "metrics_s": round(finished - metrics_started, 3),
            "total_s": round(finished - started, 3),
        },
    }


def _check_arguments(args: argparse.Namespace) -> None:
    """Reject option combinations that would be silently ignored, before any work."""
    if args.checkpoint is not None and args.data_dir is None:
        raise UsageError("--checkpoint needs --data-dir (the Market-1501 root to evaluate on)")
    if args.features is not None:
        for option, value in (
            ("--data-dir", args.data_dir),
            ("--flip", args.flip or None),
            ("--batch-size", args.batch_size),
            ("--save-features", args.save_features),
        ):
            if value is not None:
                raise UsageError(f"{option} only applies with --checkpoint, not --features")
    for option, path in (("--output", args.output), ("--save-features", args.save_features)):
        if path is not None and not path.parent.is_dir():
            raise UsageError(f"{option}: folder {path.parent} does not exist")


def _device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(
            f"--device: {name!r} is not a torch device (e.g. cpu, cuda, cuda:1)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device: CUDA was requested but is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device: only cpu and cuda are supported, got {name!r}")
    return device


def load_feature_file(path: Path) -> dict[str, np.ndarray]:
    """Read and validate a features ``.npz``; every problem is a UsageError naming it."""
    if not path.is_file():
        raise UsageError(f"--features: {path} does not exist or is not a file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in FEATURE_KEYS if key not in archive.files]
            if missing:
                raise UsageError(
                    f"--features: {path} lacks {', '.join(missing)} "
                    f"(found: {', '.join(archive.files) or 'nothing'})"
                )
            arrays = {key: archive[key] for key in FEATURE_KEYS}
    except UsageError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UsageError(f"--features: {path} is not a readable .npz file: {error}") from None
    _check_feature_arrays(arrays, path)
    return arrays


def _check_feature_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    for split in ("query", "gallery"):
        features = arrays[f"{split}_features"]
        if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
            raise UsageError(
                f"--features: {split}_features in {path} must be a 2-D float array (N, D), "
                f"got shape {features.shape} and dtype {features.dtype}"
            )
        for ids_key in (f"{split}_pids", f"{split}_camids"):
            values = arrays[ids_key]
            if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
                raise UsageError(
                    f"--features: {ids_key} in {path} must be a 1-D integer array, "
                    f"got shape {values.shape} and dtype {values.dtype}"
                )
            if len(values) != len(features):
                raise UsageError(
                    f"--features: {ids_key} in {path} has {len(values)} entries but "
                    f"{split}_features has {len(features)} rows"
                )
    query_dim = arrays["query_features"].shape[1]
    gallery_dim = arrays["gallery_features"].shape[1]
    if query_dim != gallery_dim:
        raise UsageError(
            f"--features: query and gallery features in {path} have different dimensions "
            f"({query_dim} vs {gallery_dim})"
        )


def _embed_market_folder(
    args: argparse.Namespace, device: torch.device
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    root: Path = args.data_dir
    if not root.is_dir():
        raise UsageError(f"--data-dir: {root} does not exist or is not a directory")
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
    # Imported here: the network pulls in torchvision, seconds of start-up that scoring a
    # features file does not need.
    from model.checkpoint import CheckpointError, load_checkpoint

    try:
        network, card = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise UsageError(f"--checkpoint: {error}") from None

    arrays: dict[str, np.ndarray] = {}
    batch_size = args.batch_size or DEFAULT_BATCH_SIZE
    for split, records in splits.items():
        batches = _image_batches(records, batch_size, args.workers)
        progress = tqdm(
            batches,
            desc=f"embedding {split}",
            unit="batch",
            disable=None,
            total=-(-len(records) // batch_size),
            file=sys.stderr,
        )
        try:
            compute = ComputeSettings.resolve(device, args.amp, args.amp)
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
    }
    return arrays, source


def _image_batches(
    records: list[ImageRecord], batch_size: int, workers: int
) -> Iterator[torch.Tensor]:
    """Decode crops on a thread pool, preparing the next batch while one is being embedded.

    PIL releases the GIL while decoding and resizing, so threads keep a GPU fed without
    worker processes. A crop that does not decode stops the run: silently dropping test
    images would change the benchmark being reported.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def submit(start: int) -> list[Future[torch.Tensor]]:
            chunk = records[start : start + batch_size]
            return [pool.submit(_load_crop, record.path) for record in chunk]

        pending = submit(0)
        for start in range(batch_size, len(records) + batch_size, batch_size):
            upcoming = submit(start)
            yield torch.stack([future.result() for future in pending])
            pending = upcoming


def _load_crop(path: Path) -> torch.Tensor:
    try:
        return preprocess(decode_image(path.read_bytes()))
    except (ImageDecodeError, OSError) as error:
        raise UsageError(f"--data-dir: cannot read image {path}: {error}") from None


def _write_feature_file(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _write_atomically(path, buffer.getvalue())


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a sibling file and rename, so a reader never sees half a report."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


if __name__ == "__main__":
    sys.exit(main())
