"""Read the Market-1501 folder layout into (path, identity, camera) records.

Only names and folders are inspected here, never pixels: the service also uses
this module to validate an uploaded archive before decoding anything, and the
evaluator needs the split lists without paying for image I/O. Checking whether
an image actually decodes is the dataset's job (training/data/dataset.py).

A Market-1501 root holds three folders::

    bounding_box_train/   training identities
    query/                one crop per (test identity, camera) to search with
    bounding_box_test/    the gallery searched: test identities, distractors, junk

and every crop is named ``<pid>_c<camera>s<sequence>_<frame>_<box>.jpg``, for example
``0002_c1s1_000451_03.jpg`` (identity 2 seen by camera 1). The shorter ``0002_c1_x.jpg``
style (no sequence, as in DukeMTMC-reID) and ``.png`` files are accepted too. Identity
``-1`` marks junk detections, which the standard protocol ignores, so they are dropped by
default; identity ``0000`` marks distractors, which stay in the gallery because they are
exactly what makes retrieval hard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TRAIN_FOLDER = "bounding_box_train"
QUERY_FOLDER = "query"
GALLERY_FOLDER = "bounding_box_test"
SPLIT_FOLDERS = (TRAIN_FOLDER, QUERY_FOLDER, GALLERY_FOLDER)

JUNK_PID = -1
DISTRACTOR_PID = 0
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
EXAMPLE_NAME = "0002_c1s1_000451_03.jpg"

_NAME_PATTERN = re.compile(
    r"^(?P<pid>-1|\d+)_c(?P<camid>\d+)(?:s\d+)?(?:_[^/\\]*)?\.(?:jpe?g|png)$",
    re.IGNORECASE,
)
_MAX_LISTED = 5


class DatasetLayoutError(ValueError):
    """The folder is not laid out, or its files not named, as Market-1501 expects."""


@dataclass(frozen=True)
class ImageRecord:
    """One crop on disk and who/where it shows; camera 0 means "unknown"."""

    path: Path
    pid: int
    camid: int


@dataclass(frozen=True)
class MarketSplits:
    """The three Market-1501 splits, each sorted by file name."""

    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]

    def summary(self) -> dict[str, dict[str, int]]:
        """Image, identity and camera counts per split, e.g. for a model card."""
        return {
            "train": summarize_records(self.train),
            "query": summarize_records(self.query),
            "gallery": summarize_records(self.gallery),
        }


def summarize_records(records: list[ImageRecord]) -> dict[str, int]:
    """Count images, distinct identities and distinct cameras in ``records``."""
    return {
        "images": len(records),
        "identities": len({record.pid for record in records}),
        "cameras": len({record.camid for record in records}),
    }


def parse_market_filename(name: str) -> tuple[int, int] | None:
    """Return ``(pid, camid)`` for a Market-1501 crop name, or None if it is not one.

    A leading directory (as in a zip member ``query/0002_c1s1_000451_03.jpg``) is
    ignored. Camera numbers start at 1, so ``c0`` is not a valid name.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    match = _NAME_PATTERN.match(base)
    if match is None:
        return None
    camid = int(match["camid"])
    if camid < 1:
        return None
    return int(match["pid"]), camid


def read_market_split(folder: Path, *, drop_junk: bool = True) -> list[ImageRecord]:
    """List the crops in one split folder, sorted by name.

    Hidden files and non-image files (``Thumbs.db``) are ignored. An image file
    whose name does not parse is an error rather than silently skipped: losing
    images without notice would quietly change the benchmark being reported.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetLayoutError(f"{folder} is not a directory")
    records: list[ImageRecord] = []
    misnamed: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if not path.is_file():
            continue
        parsed = parse_market_filename(path.name)
        if parsed is None:
            misnamed.append(path.name)
            continue
        pid, camid = parsed
        if drop_junk and pid == JUNK_PID:
            continue
        records.append(ImageRecord(path=path, pid=pid, camid=camid))
    if misnamed:
        listed = ", ".join(misnamed[:_MAX_LISTED])
        more = f" and {len(misnamed) - _MAX_LISTED} more" if len(misnamed) > _MAX_LISTED else ""
        raise DatasetLayoutError(
            f"{len(misnamed)} image(s) in {folder} are not named like Market-1501 crops "
            f"(expected <pid>_c<camera>s<seq>_<frame>_<box>.jpg, e.g. {EXAMPLE_NAME}); "
            f"found {listed}{more}"
        )
    return records


def load_market1501(root: Path) -> MarketSplits:
    """Read all three splits, failing with a message that says what to fix.

    Every split must exist and hold at least one usable image: an empty query or
    gallery would make every metric meaningless rather than merely low.
    """
    root = Path(root)
    if not root.exists():
        raise DatasetLayoutError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset path {root} is not a directory")
    missing = [name for name in SPLIT_FOLDERS if not (root / name).is_dir()]
    if missing:
        raise DatasetLayoutError(_missing_folders_message(root, missing))
    splits = {}
    for name in SPLIT_FOLDERS:
        records = read_market_split(root / name)
        if not records:
            raise DatasetLayoutError(
                f"{root / name} holds no usable images "
                f"(expected files named like {EXAMPLE_NAME}; junk pid -1 does not count)"
            )
        splits[name] = records
    return MarketSplits(
        train=splits[TRAIN_FOLDER], query=splits[QUERY_FOLDER], gallery=splits[GALLERY_FOLDER]
    )


def _missing_folders_message(root: Path, missing: list[str]) -> str:
    found = sorted(child.name for child in root.iterdir() if child.is_dir())
    shown = ", ".join(found[:10]) + (" ..." if len(found) > 10 else "") if found else "no folders"
    message = (
        f"{root} is not a Market-1501 folder: missing {', '.join(missing)} "
        f"(expected {', '.join(SPLIT_FOLDERS)}; found {shown})"
    )
    nested = [name for name in found if all((root / name / s).is_dir() for s in SPLIT_FOLDERS)]
    if nested:
        message += f"; did you mean {root / nested[0]}?"
    return message
