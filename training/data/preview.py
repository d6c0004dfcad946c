"""A contact sheet of synthetic identities (rows) as seen by each camera (columns).

Looking at the grid is the quickest way to judge whether a change to the
renderer keeps identities recognisable across cameras while cameras still look
different; ``docs/synthetic_samples.png`` is produced by this module.

Usage::

    python -m training.data.preview docs/synthetic_samples.png --ids 6 --cameras 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from training.data.synthetic import MAX_CAMERAS, crop_rng, render_person

CELL_WIDTH = 64
CELL_HEIGHT = 128
GAP = 4


def render_preview_grid(
    *, num_ids: int = 6, num_cameras: int = 4, seed: int = 0, first_pid: int = 1
) -> Image.Image:
    """Crop 0 of each (identity, camera), exactly as the generator draws it."""
    if num_ids < 1 or not 1 <= num_cameras <= MAX_CAMERAS:
        raise ValueError(f"need num_ids >= 1 and 1 <= num_cameras <= {MAX_CAMERAS}")
    sheet = Image.new(
        "RGB",
        (num_cameras * (CELL_WIDTH + GAP) + GAP, num_ids * (CELL_HEIGHT + GAP) + GAP),
        (255, 255, 255),
    )
    for row in range(num_ids):
        pid = first_pid + row
        for column in range(num_cameras):
            camid = column + 1
            crop = render_person(pid, camid, crop_rng(seed, pid, camid, 0), seed=seed)
            cell = crop.resize((CELL_WIDTH, CELL_HEIGHT), Image.Resampling.BILINEAR)
            sheet.paste(cell, (GAP + column * (CELL_WIDTH + GAP), GAP + row * (CELL_HEIGHT + GAP)))
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.data.preview",
        description="Write a PNG grid of synthetic identities (rows) by camera (columns).",
    )
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--ids", type=int, default=6, help="identities, one per row (6)")
    parser.add_argument("--cameras", type=int, default=4, help="cameras, one per column (4)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (0)")
    args = parser.parse_args(argv)
    try:
        sheet = render_preview_grid(num_ids=args.ids, num_cameras=args.cameras, seed=args.seed)
    except ValueError as error:
        parser.error(str(error))
    # A 256-colour palette keeps the sheet small enough to commit (noise defeats
    # lossless RGB compression) while looking the same at a glance.
    sheet.quantize(colors=256).save(args.out, format="PNG", optimize=True)
    print(f"wrote {args.out} ({args.ids} identities x {args.cameras} cameras)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
