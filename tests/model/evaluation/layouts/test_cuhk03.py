from pathlib import Path

import pytest
from dataset_fixtures import cuhk03_fixture

from model.evaluation.layouts.cuhk03 import (
    load_cuhk03_detected,
    load_cuhk03_labeled,
    parse_cuhk03_filename,
)
from model.evaluation.layouts.records import DatasetLayoutError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0001_c1_1.png", (1, 1)),
        ("1467_c2_10.png", (1467, 2)),
        ("0001_c1_1.jpg", (1, 1)),  # the common JPEG conversion
        ("0001_c3_1.png", None),  # two cameras per identity
        ("0001_c1s1_000451_03.png", None),
        ("1_001_1_01.png", None),  # the raw CUHK03 .mat export naming
    ],
)
def test_parse_cuhk03_names(name: str, expected: tuple[int, int] | None) -> None:
    assert parse_cuhk03_filename(name) == expected


def test_both_variants_are_read_from_the_np_root(tmp_path: Path) -> None:
    root = cuhk03_fixture(tmp_path)
    detected, labeled = load_cuhk03_detected(root), load_cuhk03_labeled(root)
    assert (detected.layout, labeled.layout) == ("cuhk03-detected", "cuhk03-labeled")
    assert all(r.path.parent.parent.name == "detected" for r in detected.train)
    assert detected.summary()["train"] == {"images": 4, "identities": 2, "cameras": 2}
    assert [(r.pid, r.camid) for r in detected.query] == [(768, 1), (768, 2)]
    assert len(detected.gallery) == 2
    assert len(labeled.gallery) == 3


def test_variant_folder_given_directly_points_at_its_parent(tmp_path: Path) -> None:
    root = cuhk03_fixture(tmp_path)
    with pytest.raises(DatasetLayoutError, match=r"missing detected/.*give its parent folder"):
        load_cuhk03_detected(root / "detected")


def test_missing_variant_is_named(tmp_path: Path) -> None:
    root = cuhk03_fixture(tmp_path)
    (root / "labeled").rename(root / "hand")
    with pytest.raises(DatasetLayoutError, match=r"missing labeled/.*found detected, hand"):
        load_cuhk03_labeled(root)
