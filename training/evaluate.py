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
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.compute import SWITCHES
from model.evaluation.layouts.catalogue import EVALUATION_LAYOUTS
from model.evaluation.layouts.split_folders import GALLERY_FOLDER, QUERY_FOLDER
from model.evaluation.metrics import DEFAULT_MAX_RANK, compute_reid_metrics
from training import evaluate_reranking
from training.evaluation_inputs import DEFAULT_BATCH_SIZE, embed_query_gallery
from training.feature_files import (
    FEATURE_KEYS,
    load_feature_file,
    write_atomically,
    write_feature_file,
)
from training.usage import UsageError, positive_int, run_command


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
    parser.add_argument(
        "--layout",
        choices=EVALUATION_LAYOUTS,
        default=None,
        help="layout of --data-dir (default market: only query/ and bounding_box_test/ are read)",
    )
    parser.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    parser.add_argument(
        "--flip", action="store_true", help="add the mirrored crop's embedding (with --checkpoint)"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        default=None,
        help=f"images per forward pass (default {DEFAULT_BATCH_SIZE}; with --checkpoint)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
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
        type=positive_int,
        default=DEFAULT_MAX_RANK,
        metavar="K",
        help=f"length of the reported CMC curve (default {DEFAULT_MAX_RANK})",
    )
    parser.add_argument(
        "--output", type=Path, metavar="FILE.json", help="also write the JSON report here"
    )
    open_set = parser.add_argument_group("open-set identification (docs/open_set.md)")
    open_set.add_argument(
        "--open-set",
        action="store_true",
        help="also report FNIR at FPIR 10%%/1%%/0.1%% with part of the gallery withheld",
    )
    open_set.add_argument(
        "--open-set-plots",
        type=Path,
        metavar="DIR",
        help="write det.png and open_set_scores.png into DIR (with --open-set)",
    )
    open_set.add_argument("--withheld-fraction", type=float, default=None, metavar="F")
    open_set.add_argument("--seed", type=int, default=None, help="seed of the withheld split")
    parser.add_argument(
        "--save-features",
        type=Path,
        metavar="FILE.npz",
        help="write the extracted features as .npz (--checkpoint)",
    )
    evaluate_reranking.add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; returns the exit status (2 for usage errors) instead of exiting."""
    status, args, report = run_command(build_parser(), argv, _evaluate)
    if args is None:
        return status
    text = json.dumps(report, indent=2)
    print(text)
    if args.output is not None:
        write_atomically(args.output, (text + "\n").encode())
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
        arrays, source = embed_query_gallery(args, device)
        extraction_s = time.perf_counter() - started
        if args.save_features is not None:
            write_feature_file(args.save_features, arrays)

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
    extra = {"open_set": _open_set(args, arrays)} if args.open_set else {}
    return {
        **metrics.to_dict(),
        **extra,
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


def _open_set(args: argparse.Namespace, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    from model.checkpoint import read_model_card
    from training.open_set_report import open_set_report

    calibration = None if args.checkpoint is None else read_model_card(args.checkpoint).calibration
    try:
        return open_set_report(
            arrays,
            withheld_fraction=0.5 if args.withheld_fraction is None else args.withheld_fraction,
            seed=0 if args.seed is None else args.seed,
            calibration=calibration,
            plot_dir=args.open_set_plots,
        )
    except ValueError as error:
        raise UsageError(f"--open-set: {error}") from None


def _check_arguments(args: argparse.Namespace) -> None:
    """Reject option combinations that would be silently ignored, before any work."""
    if not args.open_set:
        for option, value in (
            ("--withheld-fraction", args.withheld_fraction),
            ("--seed", args.seed),
            ("--open-set-plots", args.open_set_plots),
        ):
            if value is not None:
                raise UsageError(f"{option} only applies with --open-set")
    elif args.open_set_plots is not None and not args.open_set_plots.is_dir():
        raise UsageError(f"--open-set-plots: folder {args.open_set_plots} does not exist")
    if args.checkpoint is not None and args.data_dir is None:
        raise UsageError("--checkpoint needs --data-dir (the Market-1501 root to evaluate on)")
    if args.features is not None:
        for option, value in (
            ("--data-dir", args.data_dir),
            ("--layout", args.layout),
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


if __name__ == "__main__":
    sys.exit(main())
