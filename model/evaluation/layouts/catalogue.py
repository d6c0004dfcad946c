"""The layout names the command lines accept, each mapped to its reader, and layout detection.

One plain table, so adding a layout is one module plus one line here, and the
trainer, the evaluator and the dataset checker all accept the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model.evaluation.layouts.cuhk03 import (
    VARIANTS,
    load_cuhk03_detected,
    load_cuhk03_labeled,
    parse_cuhk03_filename,
)
from model.evaluation.layouts.duke import load_dukemtmc, parse_duke_filename
from model.evaluation.layouts.folder import load_identity_folders
from model.evaluation.layouts.market import load_market1501
from model.evaluation.layouts.msmt17 import LIST_FILES, load_msmt17
from model.evaluation.layouts.records import (
    DatasetLayoutError,
    DatasetSplits,
    check_directory,
    has_image_suffix,
)
from model.evaluation.layouts.split_folders import SPLIT_FOLDERS, TRAIN_FOLDER

LAYOUT_READERS: dict[str, Callable[[Path], DatasetSplits]] = {
    "market": load_market1501,
    "duke": load_dukemtmc,
    "msmt17": load_msmt17,
    "cuhk03-detected": load_cuhk03_detected,
    "cuhk03-labeled": load_cuhk03_labeled,
    "folder": load_identity_folders,
}
LAYOUT_NAMES = tuple(LAYOUT_READERS)
# Layouts whose root also holds a query/gallery split to evaluate on.
EVALUATION_LAYOUTS = tuple(name for name in LAYOUT_NAMES if name != "folder")


def read_layout(layout: str, root: Path) -> DatasetSplits:
    """Read ``root`` as ``layout``; `DatasetLayoutError` if it is not laid out that way."""
    if layout not in LAYOUT_READERS:
        raise DatasetLayoutError(
            f"unknown dataset layout {layout!r}; expected one of {', '.join(LAYOUT_NAMES)}"
        )
    return LAYOUT_READERS[layout](root)


def detect_layout(root: Path) -> str:
    """Which layout ``root`` is, from folder and list names and one file name; never guesses.

    MSMT17 has list files, CUHK03-NP its variant folders (both variants present is
    ambiguous and an error), the three split folders are DukeMTMC-reID when the
    first training crop has Duke's ``_f<frame>`` name and Market-1501 otherwise, and a
    root whose sub-folders hold images is the identity-folder layout. Reading the
    detected layout still checks every name.
    """
    root = check_directory(root, "dataset folder")
    if all((root / name).is_file() for name in LIST_FILES):
        return "msmt17"
    variants = [v for v in VARIANTS if all((root / v / s).is_dir() for s in SPLIT_FOLDERS)]
    if len(variants) > 1:
        raise DatasetLayoutError(
            f"{root} holds both CUHK03-NP variants; choose --layout "
            + " or ".join(f"cuhk03-{v}" for v in variants)
        )
    if variants:
        return f"cuhk03-{variants[0]}"
    if all((root / name).is_dir() for name in SPLIT_FOLDERS):
        train = sorted((root / TRAIN_FOLDER).iterdir())
        first = next((path.name for path in train if has_image_suffix(path)), "")
        if parse_duke_filename(first) is not None:
            return "duke"
        if parse_cuhk03_filename(first) is not None:
            raise DatasetLayoutError(
                f"{root} looks like one CUHK03-NP variant folder ({first}); give the folder "
                f"above it, which holds {' and '.join(VARIANTS)}/, with --layout "
                f"cuhk03-{root.name if root.name in VARIANTS else 'detected'}"
            )
        return "market"
    if any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        return "folder"
    raise DatasetLayoutError(
        f"{root} is none of the known layouts ({', '.join(LAYOUT_NAMES)}): it has no "
        f"{', '.join(SPLIT_FOLDERS)} folders, no MSMT17 lists, no CUHK03-NP "
        f"{' or '.join(VARIANTS)} folder and no identity folders"
    )
