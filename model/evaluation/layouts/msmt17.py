"""MSMT17: image folders plus list files that name every crop and its identity.

::

    ROOT/
      train/  test/                    (MSMT17_V1; MSMT17_V2: mask_train_v2/ mask_test_v2/)
      list_train.txt  list_val.txt     paths under the train folder
      list_query.txt  list_gallery.txt paths under the test folder

Each list line is ``<relative path> <pid>``, e.g.
``0000/0000_000_01_0303morning_0015_0.jpg 0``. The camera is the third ``_`` field of
the file name (``01``; cameras 1-15). Training reads ``list_train.txt`` and
``list_val.txt`` together: the paper's 32,621-image, 1,041-identity training set
(the validation list is a held-out part of it, not another benchmark).

Pids are the list's plus one. MSMT17 numbers identities from ``0``, which every
other layout here (and the checker) reads as "distractor"; shifting keeps identity
``0`` of MSMT17 a real person. Test pids restart at ``0``/``1``: they are a separate
set of people from the training ones, so the overlap in numbers means nothing.
Only listed files are read; anything else in the folders is ignored.
"""

from __future__ import annotations

from pathlib import Path

from model.evaluation.layouts.records import (
    DatasetLayoutError,
    DatasetSplits,
    ImageRecord,
    check_directory,
    has_image_suffix,
    listed,
)

LAYOUT = "msmt17"
CAMERAS = 15
PID_SHIFT = 1
LIST_FILES = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
# (train folder, test folder) of each release, newest first.
IMAGE_FOLDERS = (("mask_train_v2", "mask_test_v2"), ("train", "test"))
EXAMPLE_LINE = "0000/0000_000_01_0303morning_0015_0.jpg 0"


def camera_from_msmt17_name(name: str) -> int | None:
    """The camera (1-15) in ``0000_000_01_0303morning_0015_0.jpg``, or None if not so named."""
    fields = Path(name).stem.split("_")
    if len(fields) < 4 or not fields[2].isdigit():
        return None
    camid = int(fields[2])
    return camid if 1 <= camid <= CAMERAS else None


def load_msmt17(root: Path) -> DatasetSplits:
    """Read the four list files and check every listed crop exists and is named right."""
    root = check_directory(root, "dataset folder")
    missing = [name for name in LIST_FILES if not (root / name).is_file()]
    if missing:
        raise DatasetLayoutError(
            f"{root} is not an MSMT17 folder: missing {', '.join(missing)} "
            f"(expected {', '.join(LIST_FILES)} next to train/ and test/)"
        )
    train_folder, test_folder = _image_folders(root)
    train_part, skipped_train = _read_list(root / "list_train.txt", train_folder)
    val_part, skipped_val = _read_list(root / "list_val.txt", train_folder)
    query, skipped_query = _read_list(root / "list_query.txt", test_folder)
    gallery, skipped_gallery = _read_list(root / "list_gallery.txt", test_folder)
    train = train_part + val_part
    for name, records in (("train", train), ("query", query), ("gallery", gallery)):
        if not records:
            raise DatasetLayoutError(f"the MSMT17 lists under {root} name no {name} images")
    return DatasetSplits(
        layout=LAYOUT,
        train=train,
        query=query,
        gallery=gallery,
        not_images=skipped_train + skipped_val + skipped_query + skipped_gallery,
        separate_test_pids=True,
    )


def _image_folders(root: Path) -> tuple[Path, Path]:
    present = [pair for pair in IMAGE_FOLDERS if all((root / f).is_dir() for f in pair)]
    if len(present) > 1:
        raise DatasetLayoutError(
            f"{root} holds both MSMT17 releases' image folders "
            f"({', '.join(f'{a}/ {b}/' for a, b in present)}); keep one per root"
        )
    if not present:
        expected = " or ".join(f"{a}/ and {b}/" for a, b in IMAGE_FOLDERS)
        raise DatasetLayoutError(f"{root} has the MSMT17 lists but not {expected}")
    train, test = present[0]
    return root / train, root / test


def _read_list(list_file: Path, folder: Path) -> tuple[list[ImageRecord], int]:
    """The records of one list file, and how many listed paths were not images."""
    records: list[ImageRecord] = []
    not_images = 0
    malformed: list[str] = []
    absent: list[str] = []
    lines = list_file.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        camid = camera_from_msmt17_name(fields[0]) if len(fields) == 2 else None
        if camid is None or not fields[1].isdigit():
            malformed.append(f"line {number}: {line.strip()!r}")
            continue
        path = folder / fields[0]
        if not has_image_suffix(path):
            not_images += 1
            continue
        if not path.is_file():
            absent.append(fields[0])
            continue
        records.append(ImageRecord(path=path, pid=int(fields[1]) + PID_SHIFT, camid=camid))
    if malformed:
        raise DatasetLayoutError(
            f"{len(malformed)} line(s) of {list_file} are not '<path> <pid>' with an MSMT17 "
            f"file name (e.g. {EXAMPLE_LINE!r}, camera 1-{CAMERAS}): {listed(malformed)}"
        )
    if absent:
        raise DatasetLayoutError(
            f"{len(absent)} file(s) listed in {list_file.name} are not in {folder}: "
            f"{listed(absent)}"
        )
    return records, not_images
