"""Market-1501: ``<pid>_c<camera>s<sequence>_<frame>_<box>.jpg`` in the three split folders.

``0002_c1s1_000451_03.jpg`` is identity 2 seen by camera 1 (cameras 1-6). Identity
``-1`` marks junk detections, which the standard protocol ignores, so they are
dropped; identity ``0000`` marks distractors, which stay in the gallery because
they are exactly what makes retrieval hard. The parser also accepts names without
the sequence (``0001_c2_f0046182.jpg``) and ``.png``/``.jpeg`` files, because the
service takes Market-style uploads from many tools; the stricter DukeMTMC-reID
and CUHK03-NP schemes live in their own modules. The parser imports no imaging
library: the service checks uploaded names with it before decoding anything.
"""

from __future__ import annotations

import re
from pathlib import Path

from model.evaluation.layouts.records import DatasetSplits, ImageRecord
from model.evaluation.layouts.split_folders import NamingScheme, read_split, read_split_folders

LAYOUT = "market"
EXAMPLE_NAME = "0002_c1s1_000451_03.jpg"

_NAME_PATTERN = re.compile(
    r"^(?P<pid>-1|\d+)_c(?P<camid>\d+)(?:s\d+)?(?:_[^/\\]*)?\.(?:jpe?g|png)$",
    re.IGNORECASE,
)


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


MARKET_NAMING = NamingScheme(
    title="Market-1501",
    parse=parse_market_filename,
    pattern="<pid>_c<camera>s<seq>_<frame>_<box>.jpg",
    example=EXAMPLE_NAME,
)


def read_market_split(folder: Path, *, drop_junk: bool = True) -> list[ImageRecord]:
    """The crops of one Market-1501 split folder, sorted by name (see `read_split`)."""
    return read_split(folder, MARKET_NAMING, drop_junk=drop_junk).records


def load_market1501(root: Path) -> DatasetSplits:
    """Read ``bounding_box_train/``, ``query/`` and ``bounding_box_test/`` under ``root``."""
    return read_split_folders(root, MARKET_NAMING, LAYOUT)
