import json
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.evaluation.layouts.market import load_market1501, read_market_split
from training.data.preview import main as preview_main
from training.data.preview import render_preview_grid
from training.data.synthetic import (
    crop_rng,
    generate_synthetic_market,
    main,
    render_person,
    render_person_with_silhouette,
)

RunModule = Callable[..., subprocess.CompletedProcess[str]]  # the run_module fixture
SMALL = {"num_train_ids": 4, "num_test_ids": 4, "num_cameras": 3, "images_per_id_per_camera": 2}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic_market(tmp_path_factory.mktemp("syn") / "market", seed=0, **SMALL)


def test_same_seed_gives_identical_bytes(market: Path, tmp_path: Path) -> None:
    again = generate_synthetic_market(tmp_path / "again", seed=0, **SMALL)
    assert _files(again) == _files(market)


def test_different_seed_differs(market: Path, tmp_path: Path) -> None:
    other = _files(generate_synthetic_market(tmp_path / "other", seed=1, **SMALL))
    first = _files(market)
    shared = set(first) & set(other) - {"synthetic_market.json"}
    assert shared, "expected some identical file names to compare"
    assert all(first[name] != other[name] for name in shared)


def test_crop_does_not_depend_on_what_else_is_generated(market: Path, tmp_path: Path) -> None:
    bigger = generate_synthetic_market(
        tmp_path / "bigger", seed=0, **{**SMALL, "num_train_ids": 7, "num_test_ids": 2}
    )
    small_train = _files(market / "bounding_box_train")
    big_train = _files(bigger / "bounding_box_train")
    assert small_train.items() <= big_train.items()


def test_layout_is_readable_and_protocol_complete(market: Path) -> None:
    splits = load_market1501(market)
    train_ids = {r.pid for r in splits.train}
    test_ids = {r.pid for r in splits.query}
    assert train_ids == {1, 2, 3, 4}
    assert test_ids == {5, 6, 7, 8}
    assert {r.pid for r in splits.gallery} == test_ids | {0}
    assert not train_ids & {r.pid for r in splits.gallery}

    cameras_of: dict[int, set[int]] = defaultdict(set)
    for record in splits.train + splits.query + splits.gallery:
        cameras_of[record.pid].add(record.camid)
    assert all(len(cameras_of[pid]) >= 2 for pid in train_ids | test_ids)
    assert all(1 <= cam <= 3 for cams in cameras_of.values() for cam in cams)

    for query in splits.query:
        assert any(g.pid == query.pid and g.camid != query.camid for g in splits.gallery)
    seen = [(r.pid, r.camid) for r in splits.query]
    assert len(seen) == len(set(seen)), "at most one query per identity and camera"

    gallery_all = read_market_split(market / "bounding_box_test", drop_junk=False)
    assert sum(r.pid == -1 for r in gallery_all) == 2
    assert sum(r.pid == 0 for r in gallery_all) == 2

    manifest = json.loads((market / "synthetic_market.json").read_text())
    assert manifest["images"]["query"] == len(splits.query)
    assert manifest["test_pids"] == [5, 8]


def test_crops_are_person_sized_jpegs(market: Path) -> None:
    for path in sorted((market / "query").iterdir()):
        with Image.open(path) as image:
            assert image.format == "JPEG"
            assert image.mode == "RGB"
            width, height = image.size
            assert 110 <= width <= 146 and 226 <= height <= 286


def test_render_person_depends_only_on_its_inputs() -> None:
    def crop(pid: int, camid: int, key: int, seed: int = 0) -> np.ndarray:
        image = render_person(pid, camid, np.random.default_rng(key), seed=seed)
        return np.asarray(image)

    first = crop(3, 1, key=7)
    assert np.array_equal(first, crop(3, 1, key=7))
    assert not np.array_equal(first, crop(3, 1, key=8))
    assert not np.array_equal(first, crop(3, 1, key=7, seed=1))
    assert crop(3, 2, key=7).mean() != pytest.approx(first.mean(), abs=1e-6)


def test_refuses_a_non_empty_output_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        generate_synthetic_market(tmp_path, seed=0, **SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_cli_writes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    argv = [str(out), "--train-ids", "2", "--test-ids", "2", "--cameras", "2", "--per-camera", "1"]
    assert main([*argv, "--seed", "3", "--distractors", "1", "--junk", "0"]) == 0
    report = capsys.readouterr().out
    assert f"to {out}" in report
    assert "bounding_box_train/: " in report
    assert load_market1501(out).summary()["train"]["identities"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train-ids", "0"], "num_train_ids must be at least 1"),
        (["--test-ids", "-3"], "num_test_ids must be at least 1"),
        (["--cameras", "1"], "num_cameras must be between 2 and 9"),
        (["--cameras", "12"], "num_cameras must be between 2 and 9"),
        (["--per-camera", "0"], "images_per_id_per_camera must be at least 1"),
        (["--seed", "-1"], "seed must be non-negative"),
        (["--train-ids", "9000", "--test-ids", "1000"], "at most 9999"),
        (["--junk", "-1"], "num_junk must be non-negative"),
        (["--train-ids", "many"], "invalid int value"),
    ],
)
def test_cli_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main([str(tmp_path / "out"), *args])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_module_entry_point(tmp_path: Path, run_module: RunModule) -> None:
    result = run_module(
        "training.data.synthetic",
        str(tmp_path / "m"),
        "--train-ids",
        "1",
        "--test-ids",
        "1",
        "--per-camera",
        "1",
        "--distractors",
        "0",
        "--junk",
        "0",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    assert (tmp_path / "m" / "query").is_dir()


def test_preview_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = render_preview_grid(num_ids=2, num_cameras=3, seed=0)
    assert sheet.size == (3 * 68 + 4, 2 * 132 + 4)
    out = tmp_path / "grid.png"
    assert preview_main([str(out), "--ids", "2", "--cameras", "3"]) == 0
    with Image.open(out) as written:
        assert written.format == "PNG"
        assert written.size == sheet.size
    with pytest.raises(SystemExit):
        preview_main([str(out), "--ids", "0"])
    assert "num_ids >= 1" in capsys.readouterr().err


def test_the_silhouette_comes_with_the_very_same_crop() -> None:
    """Asking for the silhouette changes no pixel of the crop, and it covers the person."""
    for pid, camid, index in ((1, 1, 0), (7, 2, 3), (33, 4, 1), (58, 3, 5)):
        plain = render_person(pid, camid, crop_rng(0, pid, camid, index))
        crop, silhouette = render_person_with_silhouette(pid, camid, crop_rng(0, pid, camid, index))
        assert np.array_equal(np.asarray(crop), np.asarray(plain))
        assert silhouette.shape == (crop.height, crop.width) and silhouette.dtype == bool
        assert 0.05 < silhouette.mean() < 0.6  # a standing person, not the frame
        rows = np.flatnonzero(silhouette.any(axis=1))
        assert rows[-1] - rows[0] > crop.height / 2  # head to feet spans most of the height
