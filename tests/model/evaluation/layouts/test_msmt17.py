from pathlib import Path

import pytest
from dataset_fixtures import MSMT17_GALLERY, MSMT17_QUERY, msmt17_fixture

from model.evaluation.layouts.msmt17 import camera_from_msmt17_name, load_msmt17
from model.evaluation.layouts.records import DatasetLayoutError


@pytest.mark.parametrize(
    ("name", "camid"),
    [
        ("0000_000_01_0303morning_0015_0.jpg", 1),
        ("3059/3059_012_15_0113noon_0988_2.jpg", 15),
        ("0000_000_16_0303morning_0015_0.jpg", None),  # 15 cameras
        ("0000_000_00_0303morning_0015_0.jpg", None),
        ("0002_c1s1_000451_03.jpg", None),
    ],
)
def test_camera_is_the_third_field(name: str, camid: int | None) -> None:
    assert camera_from_msmt17_name(name) == camid


@pytest.mark.parametrize("version", [1, 2])
def test_lists_give_splits_with_pids_shifted_by_one(tmp_path: Path, version: int) -> None:
    splits = load_msmt17(msmt17_fixture(tmp_path, version=version))
    train_folder = "train" if version == 1 else "mask_train_v2"
    assert splits.layout == "msmt17"
    assert splits.separate_test_pids
    # list_train then list_val: the paper's training set
    assert [(r.pid, r.camid) for r in splits.train] == [(1, 1), (1, 5), (2, 3), (2, 12)]
    assert all(r.path.parent.parent.name == train_folder for r in splits.train)
    assert [(r.pid, r.camid) for r in splits.query] == [(1, 15), (2, 2)]
    assert len(splits.gallery) == len(MSMT17_GALLERY)
    assert len(splits.query) == len(MSMT17_QUERY)


def test_missing_list_file(tmp_path: Path) -> None:
    root = msmt17_fixture(tmp_path)
    (root / "list_val.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"not an MSMT17 folder: missing list_val\.txt"):
        load_msmt17(root)


def test_listed_file_that_is_absent(tmp_path: Path) -> None:
    root = msmt17_fixture(tmp_path)
    (root / "test" / "0001" / "0001_001_09_0303noon_0011_0.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match=r"1 file\(s\) listed in list_gallery.txt"):
        load_msmt17(root)


def test_malformed_line_is_reported_with_its_number(tmp_path: Path) -> None:
    root = msmt17_fixture(tmp_path)
    with (root / "list_query.txt").open("a") as handle:
        handle.write("\n0002/photo.jpg 2\n")
    with pytest.raises(DatasetLayoutError, match=r"line 4: '0002/photo.jpg 2'"):
        load_msmt17(root)


def test_both_releases_in_one_root_is_ambiguous(tmp_path: Path) -> None:
    root = msmt17_fixture(tmp_path)
    msmt17_fixture(root, version=2)
    with pytest.raises(DatasetLayoutError, match="both MSMT17 releases"):
        load_msmt17(root)


def test_lists_without_image_folders(tmp_path: Path) -> None:
    root = msmt17_fixture(tmp_path)
    (root / "test").rename(root / "probe")
    with pytest.raises(DatasetLayoutError, match="has the MSMT17 lists but not"):
        load_msmt17(root)
