"""``python -m training.datasets``: the summary of each layout and the usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dataset_fixtures import (
    cuhk03_fixture,
    duke_fixture,
    folder_fixture,
    market_fixture,
    msmt17_fixture,
    write_crop,
)

from training.datasets import main


def _summary(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--workers", "1"]) == 0
    return json.loads(capsys.readouterr().out)


def test_market_counts_follow_the_protocol(tmp_path: Path, capsys) -> None:
    summary = _summary(capsys, str(market_fixture(tmp_path)))
    assert (summary["layout"], summary["detected"]) == ("market", True)
    assert summary["splits"] == {
        "train": {"images": 4, "identities": 2, "cameras": 3, "distractors": 0},
        "query": {"images": 2, "identities": 2, "cameras": 2, "distractors": 0},
        "gallery": {"images": 5, "identities": 3, "cameras": 3, "distractors": 2},
    }
    assert summary["dropped"] == {"junk": 3, "unreadable": 0, "not_images": 3}
    assert summary["warnings"] == [  # every query has a cross-camera match: nothing else
        "train camera(s) 2, 3 have a single image each",
        "query camera(s) 1, 2 have a single image each",
        "gallery camera(s) 3 have a single image each",
    ]


def test_unreadable_images_are_dropped_and_named(tmp_path: Path, capsys) -> None:
    root = market_fixture(tmp_path)
    (root / "bounding_box_test" / "0009_c2s1_000130_00.jpg").write_bytes(b"not a jpeg")
    (root / "bounding_box_test" / "0007_c1s1_000140_00.png").write_bytes(b"\x89PNG\r\n")
    summary = _summary(capsys, str(root), "--layout", "market")
    assert summary["detected"] is False
    assert summary["dropped"]["unreadable"] == 2
    assert summary["splits"]["gallery"]["images"] == 5
    assert "2 image file(s) cannot be opened" in summary["warnings"][0]
    assert "0009_c2s1_000130_00.jpg" in summary["warnings"][0]


def test_warnings_name_what_would_skew_an_evaluation(tmp_path: Path, capsys) -> None:
    root = market_fixture(tmp_path)
    write_crop(root / "query" / "0011_c1s1_000001_00.jpg")  # nobody in the gallery
    write_crop(root / "query" / "0009_c1s1_000002_00.jpg")  # gallery has 0009 only on c1
    write_crop(root / "bounding_box_test" / "0005_c6s1_000003_00.jpg")  # a train identity
    warnings = _summary(capsys, str(root))["warnings"]
    assert any("1 query identities have no gallery image (pids 11)" in w for w in warnings)
    assert any(
        "1 query images have gallery matches only from their own camera" in w for w in warnings
    )
    assert any(
        "1 identities appear in both train and query/gallery (pids 5)" in w for w in warnings
    )
    assert any("gallery camera(s) 3, 6 have a single image" in w for w in warnings)


@pytest.mark.parametrize(
    ("build", "layout", "train_images", "gallery_images"),
    [
        (duke_fixture, "duke", 4, 4),
        (msmt17_fixture, "msmt17", 4, 3),
        (lambda root: cuhk03_fixture(root), "cuhk03-labeled", 4, 3),
    ],
)
def test_other_layouts(tmp_path: Path, capsys, build, layout, train_images, gallery_images) -> None:
    summary = _summary(capsys, str(build(tmp_path)), "--layout", layout)
    assert summary["layout"] == layout
    assert summary["splits"]["train"]["images"] == train_images
    assert summary["splits"]["gallery"]["images"] == gallery_images
    assert summary["splits"]["gallery"]["distractors"] == 0
    assert summary["dropped"] == {"junk": 0, "unreadable": 0, "not_images": 0}


def test_msmt17_shared_pid_numbers_are_not_a_leak(tmp_path: Path, capsys) -> None:
    summary = _summary(capsys, str(msmt17_fixture(tmp_path)))
    assert not any("appear in both train" in w for w in summary["warnings"])


def test_folder_layout_has_train_only(tmp_path: Path, capsys) -> None:
    summary = _summary(capsys, str(folder_fixture(tmp_path)))
    assert summary["layout"] == "folder"
    assert list(summary["splits"]) == ["train"]
    assert summary["dropped"]["not_images"] == 1
    assert any("no query/gallery split" in w for w in summary["warnings"])
    assert any("1 training identities have a single image" in w for w in summary["warnings"])


def test_output_file_holds_the_same_summary(tmp_path: Path, capsys) -> None:
    output = tmp_path / "summary.json"
    printed = _summary(capsys, str(market_fixture(tmp_path / "m")), "--output", str(output))
    assert json.loads(output.read_text()) == printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layout", "duke"], "not named like DukeMTMC-reID crops"),
        (["--layout", "msmt17"], "not an MSMT17 folder"),
        (["--layout", "viper"], "invalid choice: 'viper'"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--output", "/nonexistent-folder/x.json"], "--output: folder /nonexistent-folder"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    assert main([str(market_fixture(tmp_path)), *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_empty_and_missing_folders_exit_2(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path)]) == 2
    assert "none of the known layouts" in capsys.readouterr().err
    assert main([str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        (tmp_path / split).mkdir()
    (tmp_path / "query" / "Thumbs.db").write_bytes(b"x")
    assert main([str(tmp_path), "--layout", "market"]) == 2
    assert "holds no usable images" in capsys.readouterr().err


def test_a_split_with_no_readable_image_exits_2(tmp_path: Path, capsys) -> None:
    root = market_fixture(tmp_path)
    for path in (root / "query").glob("*.jpg"):
        path.write_bytes(b"broken")
    assert main([str(root)]) == 2
    assert "none of the query images of the dataset can be read" in capsys.readouterr().err


def test_runs_as_a_module(tmp_path: Path, run_module) -> None:
    result = run_module("training.datasets", str(market_fixture(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dropped"]["junk"] == 3
