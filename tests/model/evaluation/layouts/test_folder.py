from pathlib import Path

import pytest
from dataset_fixtures import folder_fixture

from model.evaluation.layouts.folder import (
    camera_from_filename,
    load_identity_folders,
    read_identity_folders,
)
from model.evaluation.layouts.records import DatasetLayoutError


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


@pytest.mark.parametrize(
    ("name", "camid"),
    [
        ("0002_c1s1_000451_03.jpg", 1),
        ("cam_c3_0001.png", 3),
        ("C12-frame9.jpg", 12),
        ("front_door.jpg", 0),  # "c" inside a word is not a camera
        ("img_c3x.jpg", 0),
        ("shot.jpg", 0),
    ],
)
def test_camera_token(name: str, camid: int) -> None:
    assert camera_from_filename(name) == camid


def test_identity_folders_map_to_pids_in_name_order(tmp_path: Path) -> None:
    _touch(tmp_path / "bob" / "b_c2_1.jpg")
    _touch(tmp_path / "alice" / "a_c1_1.jpg")
    _touch(tmp_path / "alice" / "a_2.png")
    _touch(tmp_path / "alice" / "notes.txt")
    _touch(tmp_path / "alice" / ".DS_Store.jpg")
    (tmp_path / "empty").mkdir()
    found = read_identity_folders(tmp_path)
    assert found.pid_of == {"alice": 1, "bob": 2}
    assert [(r.path.name, r.pid, r.camid) for r in found.records] == [
        ("a_2.png", 1, 0),
        ("a_c1_1.jpg", 1, 1),
        ("b_c2_1.jpg", 2, 2),
    ]


def test_loose_images_in_root_are_an_error(tmp_path: Path) -> None:
    _touch(tmp_path / "0001.jpg")
    with pytest.raises(DatasetLayoutError, match=r"one folder per identity.*0001\.jpg"):
        read_identity_folders(tmp_path)


def test_no_images_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir()
    with pytest.raises(DatasetLayoutError, match="no identity folders with images"):
        read_identity_folders(tmp_path)
    with pytest.raises(DatasetLayoutError, match="not a directory"):
        read_identity_folders(tmp_path / "missing")


def test_folder_layout_is_a_training_split_counting_other_files(tmp_path: Path) -> None:
    splits = load_identity_folders(folder_fixture(tmp_path))
    assert splits.layout == "folder"
    assert [(r.path.name, r.pid, r.camid) for r in splits.train] == [
        ("cam_c1_0001.jpg", 1, 1),
        ("cam_c2_0002.png", 1, 2),
        ("IMG_0042.jpg", 2, 0),
    ]
    assert (splits.query, splits.gallery, splits.not_images) == ([], [], 1)
