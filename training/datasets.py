"""Check a dataset folder before training on it: ``python -m training.datasets DIR``.

    python -m training.datasets ~/data/Market-1501-v15.09.15
    python -m training.datasets ~/data/MSMT17_V1 --layout msmt17 --output msmt17.json

Reads the folder as the given layout (or the one detected from its folder and file
names when ``--layout`` is left out), opens every image with Pillow's cheap
``verify()``, and prints a JSON summary: images, identities, cameras and
distractors per split, the junk crops, unreadable images and non-image files
dropped, and warnings. A folder that is not the layout, or that has no usable
image in a split, is a usage error (exit status 2) that says what was expected.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from model.evaluation.layouts.catalogue import LAYOUT_NAMES, detect_layout, read_layout
from model.evaluation.layouts.records import DatasetLayoutError
from training.data.inspection import SPLITS, inspect_splits, unreadable_images, without_unreadable


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.datasets",
        description="Check a re-identification dataset folder and print a JSON summary.",
    )
    parser.add_argument("root", type=Path, metavar="DIR", help="dataset root folder")
    parser.add_argument(
        "--layout",
        choices=LAYOUT_NAMES,
        default=None,
        help="dataset layout (default: detected from the folder and file names)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        metavar="N",
        help="threads opening images (default: CPU count, at most 8)",
    )
    parser.add_argument(
        "--output", type=Path, metavar="FILE.json", help="also write the summary here"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Check the folder; returns the exit status (2 for usage errors) instead of exiting."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.workers < 1:
            parser.error(f"--workers must be at least 1, got {args.workers}")
        if args.output is not None and not args.output.parent.is_dir():
            parser.error(f"--output: folder {args.output.parent} does not exist")
        try:
            summary = check_dataset(args.root, args.layout, workers=args.workers)
        except DatasetLayoutError as error:
            parser.error(str(error))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    text = json.dumps(summary, indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


def check_dataset(root: Path, layout: str | None, *, workers: int) -> dict[str, object]:
    """The summary of ``root`` read as ``layout`` (detected when None)."""
    detected = layout is None
    chosen = detect_layout(root) if layout is None else layout
    splits = read_layout(chosen, root)
    paths = [record.path for name in SPLITS for record in getattr(splits, name)]
    unreadable = unreadable_images(paths, workers=workers)
    return {
        "root": str(root),
        **inspect_splits(without_unreadable(splits, unreadable), unreadable, detected=detected),
    }


if __name__ == "__main__":
    sys.exit(main())
