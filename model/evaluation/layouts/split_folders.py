"""The three-folder layout Market-1501 made standard, read with a per-dataset naming scheme.

Market-1501, DukeMTMC-reID and both CUHK03-NP variants all ship::

    bounding_box_train/   training identities
    query/                crops to search with
    bounding_box_test/    the gallery searched

and encode identity and camera in each file name; only the naming differs, so
each layout module supplies a `NamingScheme` and this module does the reading and
the error messages once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model.evaluation.layouts.records import (
    JUNK_PID,
    DatasetLayoutError,
    DatasetSplits,
    ImageRecord,
    check_directory,
    list_folder,
    listed,
)

TRAIN_FOLDER = "bounding_box_train"
QUERY_FOLDER = "query"
GALLERY_FOLDER = "bounding_box_test"
SPLIT_FOLDERS = (TRAIN_FOLDER, QUERY_FOLDER, GALLERY_FOLDER)


@dataclass(frozen=True)
class NamingScheme:
    """How one dataset names its crops: a parser to ``(pid, camid)`` and how to explain it."""

    title: str  # "Market-1501", used in messages
    parse: Callable[[str], tuple[int, int] | None]
    pattern: str  # e.g. "<pid>_c<camera>s<seq>_<frame>_<box>.jpg"
    example: str  # a real-looking name, e.g. "0002_c1s1_000451_03.jpg"


@dataclass(frozen=True)
class SplitRead:
    """One split folder: its usable crops, the junk crops and non-image files left out."""

    records: list[ImageRecord]
    junk: int
    not_images: int


def read_split(folder: Path, scheme: NamingScheme, *, drop_junk: bool = True) -> SplitRead:
    """List the crops in one split folder, sorted by name.

    Non-image files (``Thumbs.db``) are counted and skipped. An image file whose
    name does not parse is an error rather than silently skipped: losing images
    without notice would quietly change the benchmark being reported.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetLayoutError(f"{folder} is not a directory")
    listing = list_folder(folder)
    records: list[ImageRecord] = []
    misnamed: list[str] = []
    junk = 0
    for path in listing.images:
        parsed = scheme.parse(path.name)
        if parsed is None:
            misnamed.append(path.name)
            continue
        pid, camid = parsed
        if drop_junk and pid == JUNK_PID:
            junk += 1
            continue
        records.append(ImageRecord(path=path, pid=pid, camid=camid))
    if misnamed:
        raise DatasetLayoutError(
            f"{len(misnamed)} image(s) in {folder} are not named like {scheme.title} crops "
            f"(expected {scheme.pattern}, e.g. {scheme.example}); found {listed(misnamed)}"
        )
    return SplitRead(records=records, junk=junk, not_images=listing.not_images)


def read_split_folders(root: Path, scheme: NamingScheme, layout: str) -> DatasetSplits:
    """Read all three splits, failing with a message that says what to fix.

    Every split must exist and hold at least one usable image: an empty query or
    gallery would make every metric meaningless rather than merely low.
    """
    root = check_directory(root, "dataset folder")
    missing = [name for name in SPLIT_FOLDERS if not (root / name).is_dir()]
    if missing:
        raise DatasetLayoutError(missing_folders_message(root, missing, scheme.title))
    splits: dict[str, SplitRead] = {}
    for name in SPLIT_FOLDERS:
        split = read_split(root / name, scheme)
        if not split.records:
            raise DatasetLayoutError(
                f"{root / name} holds no usable images "
                f"(expected files named like {scheme.example}; junk pid -1 does not count)"
            )
        splits[name] = split
    return DatasetSplits(
        layout=layout,
        train=splits[TRAIN_FOLDER].records,
        query=splits[QUERY_FOLDER].records,
        gallery=splits[GALLERY_FOLDER].records,
        junk=sum(split.junk for split in splits.values()),
        not_images=sum(split.not_images for split in splits.values()),
    )


def missing_folders_message(root: Path, missing: list[str], title: str) -> str:
    """What is missing, what was found instead, and the nested folder the user probably meant."""
    found = sorted(child.name for child in root.iterdir() if child.is_dir())
    shown = ", ".join(found[:10]) + (" ..." if len(found) > 10 else "") if found else "no folders"
    message = (
        f"{root} is not a {title} folder: missing {', '.join(missing)} "
        f"(expected {', '.join(SPLIT_FOLDERS)}; found {shown})"
    )
    nested = [name for name in found if all((root / name / s).is_dir() for s in SPLIT_FOLDERS)]
    if nested:
        message += f"; did you mean {root / nested[0]}?"
    return message
