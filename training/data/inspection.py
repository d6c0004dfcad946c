"""What a dataset checker reports: per-split counts, what was dropped, and what looks wrong.

A benchmark number is only as good as the folder it was computed on, and the
cheapest time to find a broken or mislabelled folder is before anyone trains on
it. `inspect_splits` turns a layout reader's `DatasetSplits` into a JSON-ready
summary: images, identities, cameras and distractors per split; junk crops,
undecodable images and non-image files dropped; and warnings for what would make
an evaluation quietly wrong (queries that cannot be matched, cameras or training
identities with a single image, identities shared between train and test).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image

from model.evaluation.layouts.records import (
    DISTRACTOR_PID,
    UNKNOWN_CAMERA,
    DatasetLayoutError,
    DatasetSplits,
    ImageRecord,
    listed,
)

SPLITS = ("train", "query", "gallery")


def unreadable_images(paths: Sequence[Path], *, workers: int = 4) -> list[Path]:
    """The files Pillow cannot open or whose structure ``verify()`` rejects.

    ``verify()`` reads headers and (for PNG) checksums without decoding pixels, so
    a whole benchmark is checked in seconds; a JPEG cut short can still pass, and
    the training dataset's full decode catches that later (docs/data.md).
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        readable = list(pool.map(_verifies, paths))
    return [path for path, ok in zip(paths, readable, strict=True) if not ok]


def _verifies(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False
    return True


def without_unreadable(splits: DatasetSplits, unreadable: Iterable[Path]) -> DatasetSplits:
    """``splits`` less the records of unreadable files; an emptied split is a layout error."""
    bad = set(unreadable)
    kept = {name: [r for r in getattr(splits, name) if r.path not in bad] for name in SPLITS}
    for name in SPLITS:
        if getattr(splits, name) and not kept[name]:
            raise DatasetLayoutError(f"none of the {name} images of the dataset can be read")
    return replace(splits, **kept)


def inspect_splits(
    splits: DatasetSplits, unreadable: Sequence[Path], *, detected: bool
) -> dict[str, Any]:
    """The checker's JSON summary of ``splits`` (already less its ``unreadable`` files)."""
    present = [name for name in SPLITS if getattr(splits, name)]
    return {
        "layout": splits.layout,
        "detected": detected,
        "splits": {name: _split_counts(getattr(splits, name)) for name in present},
        "dropped": {
            "junk": splits.junk,
            "unreadable": len(unreadable),
            "not_images": splits.not_images,
        },
        "warnings": dataset_warnings(splits, unreadable),
    }


def _split_counts(records: list[ImageRecord]) -> dict[str, int]:
    return {
        "images": len(records),
        "identities": len({r.pid for r in records}),
        "cameras": len({r.camid for r in records}),
        "distractors": sum(r.pid == DISTRACTOR_PID for r in records),
    }


def dataset_warnings(splits: DatasetSplits, unreadable: Sequence[Path]) -> list[str]:
    """Everything that is legal but would make training or evaluation quietly worse."""
    warnings: list[str] = []
    if unreadable:
        warnings.append(
            f"{len(unreadable)} image file(s) cannot be opened and were dropped: "
            f"{listed([str(path) for path in unreadable])}"
        )
    if not splits.query:
        warnings.append(
            f"the {splits.layout} layout has no query/gallery split: it can train, "
            "but evaluating needs another dataset (training.run --eval-dir)"
        )
    else:
        warnings += _evaluation_warnings(splits)
    single = [pid for pid, n in Counter(r.pid for r in splits.train).items() if n == 1]
    if single:
        warnings.append(
            f"{len(single)} training identities have a single image "
            "(a P×K batch repeats it K times)"
        )
    for name in SPLITS:
        per_camera = Counter(r.camid for r in getattr(splits, name))
        lonely = sorted(cam for cam, n in per_camera.items() if n == 1)
        if lonely:
            warnings.append(
                f"{name} camera(s) {', '.join(map(str, lonely))} have a single image each"
            )
    return warnings


def _evaluation_warnings(splits: DatasetSplits) -> list[str]:
    warnings: list[str] = []
    gallery_cameras: dict[int, set[int]] = defaultdict(set)
    for record in splits.gallery:
        gallery_cameras[record.pid].add(record.camid)
    query_pids = {r.pid for r in splits.query}
    absent = sorted(query_pids - set(gallery_cameras))
    if absent:
        warnings.append(
            f"{len(absent)} query identities have no gallery image "
            f"(pids {listed([str(pid) for pid in absent])}); the protocol skips their queries"
        )
    unmatched = [
        r
        for r in splits.query
        if r.pid in gallery_cameras and not gallery_cameras[r.pid] - {r.camid}
    ]
    if unmatched:
        warnings.append(
            f"{len(unmatched)} query images have gallery matches only from their own camera, "
            "which the protocol ignores, so they are skipped"
        )
    distractor_queries = sum(r.pid == DISTRACTOR_PID for r in splits.query)
    if distractor_queries:
        warnings.append(f"{distractor_queries} query images are distractors (pid 0)")
    unknown = sum(r.camid == UNKNOWN_CAMERA for r in (*splits.query, *splits.gallery))
    if unknown:
        warnings.append(
            f"{unknown} query/gallery images have no camera; the protocol needs cameras"
        )
    if not splits.separate_test_pids:
        test_pids = (query_pids | set(gallery_cameras)) - {DISTRACTOR_PID}
        shared = sorted(test_pids & {r.pid for r in splits.train})
        if shared:
            warnings.append(
                f"{len(shared)} identities appear in both train and query/gallery "
                f"(pids {listed([str(pid) for pid in shared])}): test identities leak into training"
            )
    return warnings
