"""Tiny real datasets in the exact folder and file naming of each standard benchmark.

Every crop is a real (8×16 pixel) JPEG or PNG that Pillow opens, so the layout
readers, the checker's image verification and the trainer all see what they would
on the real set. Each builder returns what it wrote, so tests assert counts
against the fixture rather than against numbers typed twice.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

SPLITS = ("bounding_box_train", "query", "bounding_box_test")


def write_crop(path: Path) -> Path:
    """A small real image at ``path``: format from the suffix, colour from the name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    red, green, blue = hashlib.sha256(path.name.encode()).digest()[:3]
    image = Image.new("RGB", (8, 16), (red, green, blue))
    image.save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG")
    return path


def write_crops(folder: Path, *names: str) -> None:
    for name in names:
        write_crop(folder / name)


def market_fixture(root: Path) -> Path:
    """Market-1501: 2 train ids (4 crops), 2 query, gallery of 3 + 2 distractors, 3 junk.

    Every folder also holds a ``Thumbs.db``, as the real download does.
    """
    write_crops(
        root / "bounding_box_train",
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000551_01.jpg",
        "0005_c1s1_001051_02.jpg",
        "0005_c3s2_002051_01.jpg",
        "-1_c1s1_000001_00.jpg",
    )
    write_crops(root / "query", "0007_c1s1_001000_00.jpg", "0009_c2s1_002000_00.jpg")
    write_crops(
        root / "bounding_box_test",
        "0007_c2s1_000100_00.jpg",
        "0007_c3s1_000110_01.jpg",
        "0009_c1s1_000120_00.jpg",
        "0000_c1s1_000200_00.jpg",
        "0000_c2s1_000300_00.jpg",
        "-1_c1s1_000400_00.jpg",
        "-1_c3s1_000500_00.jpg",
    )
    for split in SPLITS:
        (root / split / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 thumbnail cache")
    return root


def duke_fixture(root: Path) -> Path:
    """DukeMTMC-reID: 2 train ids, 2 query ids, gallery with one distractor identity (pid 9)."""
    write_crops(
        root / "bounding_box_train",
        "0001_c2_f0046182.jpg",
        "0001_c5_f0051341.jpg",
        "0003_c1_f0044158.jpg",
        "0003_c8_f0178065.jpg",
    )
    write_crops(root / "query", "0005_c1_f0045677.jpg", "0006_c3_f0101234.jpg")
    write_crops(
        root / "bounding_box_test",
        "0005_c4_f0071234.jpg",
        "0006_c2_f0087654.jpg",
        "0006_c7_f0123456.jpg",
        "0009_c6_f0112233.jpg",
    )
    return root


def cuhk03_fixture(root: Path) -> Path:
    """CUHK03-NP with both variants; ``labeled`` has one more gallery crop than ``detected``."""
    for variant in ("detected", "labeled"):
        base = root / variant
        write_crops(
            base / "bounding_box_train",
            "0001_c1_1.png",
            "0001_c2_6.png",
            "0002_c1_1.png",
            "0002_c2_7.png",
        )
        write_crops(base / "query", "0768_c1_2.png", "0768_c2_8.png")
        write_crops(base / "bounding_box_test", "0768_c1_1.png", "0768_c2_6.png")
    write_crop(root / "labeled" / "bounding_box_test" / "0768_c2_9.png")
    return root


MSMT17_TRAIN = {
    "0000/0000_000_01_0303morning_0015_0.jpg": 0,
    "0000/0000_001_05_0303morning_0035_1.jpg": 0,
    "0001/0001_000_03_0303morning_0101_0.jpg": 1,
}
MSMT17_VAL = {"0001/0001_002_12_0303afternoon_0200_0.jpg": 1}
MSMT17_QUERY = {
    "0000/0000_000_15_0303noon_0001_0.jpg": 0,
    "0001/0001_000_02_0303noon_0010_0.jpg": 1,
}
MSMT17_GALLERY = {
    "0000/0000_001_07_0303noon_0002_1.jpg": 0,
    "0001/0001_001_09_0303noon_0011_0.jpg": 1,
    "0001/0001_002_02_0303noon_0012_0.jpg": 1,
}


def msmt17_fixture(root: Path, *, version: int = 1) -> Path:
    """MSMT17 (V1 folders ``train``/``test``, V2 ``mask_train_v2``/``mask_test_v2``) with lists."""
    train_folder, test_folder = (
        ("train", "test") if version == 1 else ("mask_train_v2", "mask_test_v2")
    )
    for list_name, folder, entries in (
        ("list_train.txt", train_folder, MSMT17_TRAIN),
        ("list_val.txt", train_folder, MSMT17_VAL),
        ("list_query.txt", test_folder, MSMT17_QUERY),
        ("list_gallery.txt", test_folder, MSMT17_GALLERY),
    ):
        for relative in entries:
            write_crop(root / folder / relative)
        lines = "".join(f"{relative} {pid}\n" for relative, pid in entries.items())
        root.mkdir(parents=True, exist_ok=True)
        (root / list_name).write_text(lines, encoding="utf-8")
    return root


def folder_fixture(root: Path) -> Path:
    """The identity-folder layout: alice (2 crops, cameras 1 and 2), bob (1 crop), a notes file."""
    write_crops(root / "alice", "cam_c1_0001.jpg", "cam_c2_0002.png")
    write_crops(root / "bob", "IMG_0042.jpg")
    (root / "alice" / "notes.txt").write_text("who took these")
    return root
