"""Read the generic ``root/<identity>/<image>`` layout most custom datasets arrive in.

Teams rarely rename their crops into Market-1501's scheme, but almost always
have one folder per person. Each identity folder becomes a pid ``1..N`` in
sorted folder-name order (``0`` and ``-1`` keep their meanings of distractor and
junk, so they are never assigned). The camera is read from a ``c<N>`` token in
the file name when there is one (``cam_c3_0001.jpg``, ``0002_c1s1_000451_03.jpg``),
otherwise it is ``0``, meaning unknown: fine for training, but a query/gallery
evaluation needs real cameras, so this layout has training data only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from model.evaluation.layouts.records import (
    IMAGE_SUFFIXES,
    UNKNOWN_CAMERA,
    DatasetLayoutError,
    DatasetSplits,
    ImageRecord,
    has_image_suffix,
    list_folder,
    listed,
)

LAYOUT = "folder"
_CAMERA_TOKEN = re.compile(r"(?<![a-z0-9])c(\d+)(?=s\d|[^a-z0-9]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class IdentityFolders:
    """Crops found under one root, which pid each identity folder became, files skipped."""

    records: list[ImageRecord]
    pid_of: dict[str, int]
    not_images: int = 0


def camera_from_filename(name: str) -> int:
    """The camera number of a ``c<N>`` token in ``name`` (its stem), or 0 if none."""
    match = _CAMERA_TOKEN.search(Path(name).stem)
    return int(match.group(1)) if match else UNKNOWN_CAMERA


def read_identity_folders(root: Path) -> IdentityFolders:
    """List every image in ``root/<identity>/``, sorted by identity then file name.

    Only files directly inside an identity folder are read. Images lying directly
    in ``root`` are an error rather than ignored, because they almost always mean
    the wrong folder was given (e.g. a single identity's folder).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"identity-folder dataset {root} is not a directory")
    loose = sorted(
        path.name for path in root.iterdir() if path.is_file() and has_image_suffix(path)
    )
    if loose:
        raise DatasetLayoutError(
            f"{root} should hold one folder per identity (root/<identity>/<image>), but "
            f"{len(loose)} image(s) lie directly in it: {listed(loose)}"
        )
    records: list[ImageRecord] = []
    pid_of: dict[str, int] = {}
    not_images = 0
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        listing = list_folder(folder)
        not_images += listing.not_images
        if not listing.images:
            continue
        pid = len(pid_of) + 1
        pid_of[folder.name] = pid
        records += [ImageRecord(p, pid, camera_from_filename(p.name)) for p in listing.images]
    if not records:
        raise DatasetLayoutError(
            f"{root} holds no identity folders with images "
            f"(expected root/<identity>/<image> with {', '.join(sorted(IMAGE_SUFFIXES))} files; "
            f"found {len(folders)} folder(s))"
        )
    return IdentityFolders(records=records, pid_of=pid_of, not_images=not_images)


def load_identity_folders(root: Path) -> DatasetSplits:
    """The identity folders as a training split (no query or gallery)."""
    found = read_identity_folders(root)
    return DatasetSplits(
        layout=LAYOUT, train=found.records, query=[], gallery=[], not_images=found.not_images
    )
