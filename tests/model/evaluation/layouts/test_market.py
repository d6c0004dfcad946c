from pathlib import Path

import pytest
from dataset_fixtures import market_fixture
from hypothesis import given
from hypothesis import strategies as st

from model.evaluation.layouts.market import (
    load_market1501,
    parse_market_filename,
    read_market_split,
)
from model.evaluation.layouts.records import DatasetLayoutError, ImageRecord

SPLITS = ("bounding_box_train", "query", "bounding_box_test")


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"not decoded here")


def _market(root: Path) -> Path:
    _touch(root / "bounding_box_train", "0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg")
    _touch(root / "query", "0007_c3s2_001000_00.jpg")
    _touch(
        root / "bounding_box_test",
        "0007_c1s1_000100_00.jpg",
        "0000_c2s1_000200_00.jpg",
        "-1_c4s1_000300_00.jpg",
        "Thumbs.db",
    )
    return root


@given(
    pid=st.one_of(st.just(-1), st.integers(0, 9999)),
    camid=st.integers(1, 9),
    sequence=st.one_of(st.none(), st.integers(1, 9)),
    frame=st.integers(0, 999_999),
    box=st.integers(0, 99),
    suffix=st.sampled_from([".jpg", ".jpeg", ".png", ".JPG"]),
)
def test_generated_names_round_trip(
    pid: int, camid: int, sequence: int | None, frame: int, box: int, suffix: str
) -> None:
    pid_text = "-1" if pid == -1 else f"{pid:04d}"
    camera = f"c{camid}" if sequence is None else f"c{camid}s{sequence}"
    name = f"{pid_text}_{camera}_{frame:06d}_{box:02d}{suffix}"
    assert parse_market_filename(name) == (pid, camid)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0002_c1s1_000451_03.jpg", (2, 1)),
        ("-1_c6s4_000101_01.jpg", (-1, 6)),
        ("0000_c5s3_004417_00.jpg", (0, 5)),
        ("0001_c2_f0046182.jpg", (1, 2)),  # DukeMTMC-style, no sequence
        ("query/1501_c6s4_001902_02.png", (1501, 6)),  # zip member path
        ("0002_c1s1_000451_03.txt", None),
        ("0002_c0s1_000451_03.jpg", None),  # cameras start at 1
        ("person_0002.jpg", None),
        ("c1_0002.jpg", None),
        ("0002c1s1_000451_03.jpg", None),
        ("-2_c1s1_000451_03.jpg", None),
        ("", None),
    ],
)
def test_parse_known_names(name: str, expected: tuple[int, int] | None) -> None:
    assert parse_market_filename(name) == expected


def test_load_drops_junk_and_keeps_distractors(tmp_path: Path) -> None:
    splits = load_market1501(_market(tmp_path))
    assert [(r.pid, r.camid) for r in splits.train] == [(2, 1), (2, 2)]
    assert splits.query == [
        ImageRecord(tmp_path / "query" / "0007_c3s2_001000_00.jpg", pid=7, camid=3)
    ]
    assert sorted(r.pid for r in splits.gallery) == [0, 7]
    assert splits.summary()["gallery"] == {"images": 2, "identities": 2, "cameras": 2}


def test_junk_kept_when_asked(tmp_path: Path) -> None:
    records = read_market_split(_market(tmp_path) / "bounding_box_test", drop_junk=False)
    assert sorted(r.pid for r in records) == [-1, 0, 7]


@pytest.mark.parametrize("missing", SPLITS)
def test_missing_folder_names_expected_and_found(tmp_path: Path, missing: str) -> None:
    root = _market(tmp_path)
    (root / missing).rename(root / "renamed_folder")
    with pytest.raises(DatasetLayoutError) as caught:
        load_market1501(root)
    message = str(caught.value)
    assert f"missing {missing}" in message
    assert "renamed_folder" in message


def test_nested_download_folder_is_suggested(tmp_path: Path) -> None:
    _market(tmp_path / "Market-1501-v15.09.15")
    with pytest.raises(DatasetLayoutError, match=r"did you mean .*Market-1501-v15\.09\.15"):
        load_market1501(tmp_path)


def test_missing_root_and_file_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        load_market1501(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetLayoutError, match="not a directory"):
        load_market1501(tmp_path / "file")


def test_misnamed_images_are_reported_not_skipped(tmp_path: Path) -> None:
    root = _market(tmp_path)
    _touch(root / "query", "IMG_0001.jpg", "photo.png")
    with pytest.raises(DatasetLayoutError) as caught:
        load_market1501(root)
    assert "2 image(s)" in str(caught.value)
    assert "IMG_0001.jpg" in str(caught.value)
    assert "0002_c1s1_000451_03.jpg" in str(caught.value)  # shows the expected pattern


def test_split_with_only_junk_is_an_error(tmp_path: Path) -> None:
    root = _market(tmp_path)
    for path in (root / "query").iterdir():
        path.unlink()
    _touch(root / "query", "-1_c1s1_000001_00.jpg", ".hidden.jpg")
    with pytest.raises(DatasetLayoutError, match="query holds no usable images"):
        load_market1501(root)


def test_real_images_fixture_counts_junk_and_thumbs_db(tmp_path: Path) -> None:
    splits = load_market1501(market_fixture(tmp_path))
    assert splits.layout == "market"
    assert splits.summary() == {
        "train": {"images": 4, "identities": 2, "cameras": 3},
        "query": {"images": 2, "identities": 2, "cameras": 2},
        "gallery": {"images": 5, "identities": 3, "cameras": 3},
    }
    assert splits.junk == 3  # one in train, two in the gallery
    assert splits.not_images == 3  # a Thumbs.db per folder
    assert sum(r.pid == 0 for r in splits.gallery) == 2  # distractors stay
