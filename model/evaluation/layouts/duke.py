"""DukeMTMC-reID: ``<pid>_c<camera>_f<frame>.jpg`` in the Market-1501 split folders.

``0001_c2_f0046182.jpg`` is identity 1 seen by camera 2 at frame 46182 (8 cameras).
The names are checked strictly (four-digit pid, camera 1-8, ``f`` and the frame),
so a Market-1501 folder given as ``duke`` is refused instead of being read under
the wrong name. DukeMTMC-reID has no junk crops, and its gallery distractors (408
people who appear in no query) carry ordinary pids, not ``0000``.
"""

from __future__ import annotations

import re
from pathlib import Path

from model.evaluation.layouts.records import DatasetSplits
from model.evaluation.layouts.split_folders import NamingScheme, read_split_folders

LAYOUT = "duke"
CAMERAS = 8

_NAME_PATTERN = re.compile(r"^(?P<pid>\d{4})_c(?P<camid>\d+)_f\d+\.(?:jpe?g|png)$", re.IGNORECASE)


def parse_duke_filename(name: str) -> tuple[int, int] | None:
    """Return ``(pid, camid)`` for a DukeMTMC-reID crop name, or None if it is not one."""
    match = _NAME_PATTERN.match(name)
    if match is None or not 1 <= int(match["camid"]) <= CAMERAS:
        return None
    return int(match["pid"]), int(match["camid"])


DUKE_NAMING = NamingScheme(
    title="DukeMTMC-reID",
    parse=parse_duke_filename,
    pattern=f"<pid>_c<camera 1-{CAMERAS}>_f<frame>.jpg",
    example="0001_c2_f0046182.jpg",
)


def load_dukemtmc(root: Path) -> DatasetSplits:
    """Read ``bounding_box_train/``, ``query/`` and ``bounding_box_test/`` under ``root``."""
    return read_split_folders(root, DUKE_NAMING, LAYOUT)
