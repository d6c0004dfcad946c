"""CUHK03-NP, the 767/700 new protocol: ``detected/`` and ``labeled/``, each Market-like.

The re-ranking paper's release (``cuhk03-np/``) holds two variants of the same
people, boxes found by a detector and boxes drawn by hand::

    ROOT/detected/{bounding_box_train,query,bounding_box_test}/0001_c1_1.png
    ROOT/labeled/{bounding_box_train,query,bounding_box_test}/0001_c1_1.png

``0001_c1_1.png`` is identity 1 seen by camera 1 (each identity is seen by two
cameras, ``c1`` and ``c2``), image 1. Training identities and test identities are
disjoint (767 and 700); there is no junk and no distractor. The variant is part of
the layout name (``cuhk03-detected``, ``cuhk03-labeled``) because the two are
different benchmarks, and ``ROOT`` is the folder that holds both variants.
"""

from __future__ import annotations

import re
from pathlib import Path

from model.evaluation.layouts.records import DatasetLayoutError, DatasetSplits, check_directory
from model.evaluation.layouts.split_folders import (
    SPLIT_FOLDERS,
    NamingScheme,
    read_split_folders,
)

VARIANTS = ("detected", "labeled")
CAMERAS = 2

_NAME_PATTERN = re.compile(r"^(?P<pid>\d{4})_c(?P<camid>\d)_\d+\.(?:png|jpe?g)$", re.IGNORECASE)


def parse_cuhk03_filename(name: str) -> tuple[int, int] | None:
    """Return ``(pid, camid)`` for a CUHK03-NP crop name, or None if it is not one."""
    match = _NAME_PATTERN.match(name)
    if match is None or not 1 <= int(match["camid"]) <= CAMERAS:
        return None
    return int(match["pid"]), int(match["camid"])


CUHK03_NAMING = NamingScheme(
    title="CUHK03-NP",
    parse=parse_cuhk03_filename,
    pattern="<pid>_c<camera 1-2>_<image>.png",
    example="0001_c1_1.png",
)


def load_cuhk03(root: Path, variant: str) -> DatasetSplits:
    """Read the ``detected`` or ``labeled`` variant under a CUHK03-NP root."""
    if variant not in VARIANTS:
        raise ValueError(f"CUHK03-NP variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    root = check_directory(root, "dataset folder")
    if not (root / variant).is_dir():
        hint = ""
        if all((root / name).is_dir() for name in SPLIT_FOLDERS):
            hint = f"; {root} holds the split folders itself: give its parent folder"
        found = sorted(child.name for child in root.iterdir() if child.is_dir())
        raise DatasetLayoutError(
            f"{root} is not a CUHK03-NP folder: missing {variant}/ (expected "
            f"{' and '.join(VARIANTS)}, each with {', '.join(SPLIT_FOLDERS)}; "
            f"found {', '.join(found) or 'no folders'}){hint}"
        )
    return read_split_folders(root / variant, CUHK03_NAMING, f"cuhk03-{variant}")


def load_cuhk03_detected(root: Path) -> DatasetSplits:
    """CUHK03-NP with detector boxes (the harder, more commonly reported variant)."""
    return load_cuhk03(root, "detected")


def load_cuhk03_labeled(root: Path) -> DatasetSplits:
    """CUHK03-NP with hand-drawn boxes."""
    return load_cuhk03(root, "labeled")
