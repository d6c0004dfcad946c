"""python -m training.evaluate: features and checkpoint inputs, JSON report, usage errors."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_fixtures import duke_fixture

from model.checkpoint import load_checkpoint, save_checkpoint
from model.config import ModelConfig
from model.evaluation.layouts.market import parse_market_filename
from model.network import build_model
from model.preprocessing import InputSize, decode_image, preprocess
from training.data.synthetic import generate_synthetic_market
from training.evaluate import FEATURE_KEYS, main

RunModule = Callable[..., subprocess.CompletedProcess[str]]  # the run_module fixture


def hand_computed_arrays() -> dict[str, np.ndarray]:
    """The two-query case of test_metrics.py: Euclidean mAP 7/12, mINP 1/2, CMC [.5 .5 1 1]."""
    return {
        "query_features": np.array([[0.0], [4.0]], dtype=np.float32),
        "gallery_features": np.arange(5, dtype=np.float32).reshape(5, 1),
        "query_pids": np.array([1, 2]),
        "gallery_pids": np.array([1, 2, 2, 1, 3]),
        "query_camids": np.array([0, 0]),
        "gallery_camids": np.full(5, 9),
    }


def write_npz(path: Path, **overrides: np.ndarray | None) -> Path:
    arrays = {**hand_computed_arrays(), **overrides}
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


def test_features_file_is_scored_and_the_report_written(
    tmp_path: Path, run_module: RunModule
) -> None:
    features = write_npz(tmp_path / "features.npz")
    output = tmp_path / "report.json"
    result = run_module(
        "training.evaluate",
        "--features", str(features), "--metric", "euclidean", "--max-rank", "4",
        "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    assert json.loads(result.stdout) == report
    assert report["mAP"] == pytest.approx(7 / 12)
    assert report["mINP"] == pytest.approx(0.5)
    assert report["cmc"] == [0.5, 0.5, 1.0, 1.0]
    assert (report["rank1"], report["rank5"], report["rank10"]) == (0.5, 1.0, 1.0)
    assert (report["num_query"], report["num_valid_query"], report["num_gallery"]) == (2, 2, 5)
    assert report["metric"] == "euclidean"
    assert set(report["timing"]) == {"feature_extraction_s", "metrics_s", "total_s"}


def test_missing_file_is_a_usage_error_without_traceback(
    tmp_path: Path, run_module: RunModule
) -> None:
    result = run_module("training.evaluate", "--features", str(tmp_path / "absent.npz"))
    assert result.returncode == 2
    assert f"{tmp_path / 'absent.npz'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def corrupt_file(path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04 not really a zip")
    return path


def pickled_object_array(path: Path) -> Path:
    return write_npz(path, query_pids=np.array([1, "x"], dtype=object))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: write_npz(p, gallery_camids=None), "lacks gallery_camids"),
        (lambda p: write_npz(p, query_features=np.zeros(2, np.float32)), "must be a 2-D float"),
        (lambda p: write_npz(p, gallery_pids=np.ones(5) * 0.5), "must be a 1-D integer"),
        (lambda p: write_npz(p, query_camids=np.array([0])), "has 1 entries but query_features"),
        (
            lambda p: write_npz(p, gallery_features=np.zeros((5, 3), np.float32)),
            r"different dimensions \(1 vs 3\)",
        ),
        (
            lambda p: write_npz(p, gallery_camids=np.zeros(5, np.int64)),
            "cannot evaluate: no query has a positive",
        ),
        (
            lambda p: write_npz(p, query_features=np.full((2, 1), np.nan, np.float32)),
            "NaN or infinite",
        ),
        (corrupt_file, "is not a readable .npz file"),
        (pickled_object_array, "is not a readable .npz file"),
    ],
)
def test_bad_features_files_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message: str
) -> None:
    path = make(tmp_path / "features.npz")
    output = tmp_path / "report.json"
    assert main(["--features", str(path), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"error: (--features: .*features\.npz|cannot evaluate)", err)
    assert re.search(message, err)
    assert "Traceback" not in err
    assert not output.exists()  # nothing half-written


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--checkpoint", "ckpt"], "--checkpoint needs --data-dir"),
        (["--features", "f.npz", "--flip"], "--flip only applies with --checkpoint"),
        (["--features", "f.npz", "--data-dir", "d"], "--data-dir only applies with --checkpoint"),
        (["--features", "f.npz", "--layout", "duke"], "--layout only applies with --checkpoint"),
        (["--features", "f.npz", "--max-rank", "0"], "expected a positive integer, got 0"),
        (["--features", "f.npz", "--batch-size", "x"], "expected a positive integer, got 'x'"),
        (["--features", "f.npz", "--output", "no/such/dir/r.json"], "folder no/such/dir does"),
        (["--features", "f.npz", "--device", "warp9"], "'warp9' is not a torch device"),
        (["--features", "f.npz", "--checkpoint", "c"], "not allowed with argument"),
        ([], "one of the arguments --checkpoint --features is required"),
    ],
)
def test_bad_option_combinations_are_usage_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    write_npz(tmp_path / "f.npz")
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.fixture(scope="module")
def market_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("market") / "market"
    return generate_synthetic_market(
        root, num_train_ids=1, num_test_ids=3, num_cameras=2, images_per_id_per_camera=1
    )


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="resnet18", num_classes=3))
    directory = tmp_path_factory.mktemp("ckpt") / "best"
    save_checkpoint(model, directory, training_data={"dataset": "none"}, metrics={})
    return directory


def test_a_checkpoint_is_evaluated_at_its_own_input_size(
    tmp_path: Path, market_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    config = ModelConfig(arch="resnet18", num_classes=3, input_height=128, input_width=64)
    save_checkpoint(build_model(config), tmp_path / "native", training_data={}, metrics={})
    saved = tmp_path / "features.npz"
    argv = ["--checkpoint", str(tmp_path / "native"), "--data-dir", str(market_root)]
    assert main([*argv, "--device", "cpu", "--amp", "off", "--save-features", str(saved)]) == 0
    capsys.readouterr()
    model, _ = load_checkpoint(tmp_path / "native")
    image = decode_image(sorted((market_root / "query").iterdir())[0].read_bytes())
    with torch.no_grad():
        own = model.embed(preprocess(image, InputSize(128, 64)).unsqueeze(0))[0]
    with np.load(saved) as archive:
        np.testing.assert_allclose(archive["query_features"][0], own.numpy(), atol=1e-5)


def test_checkpoint_on_market_folder_end_to_end(
    tmp_path: Path, market_root: Path, checkpoint_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "features.npz"
    argv = ["--checkpoint", str(checkpoint_dir), "--data-dir", str(market_root), "--flip"]
    argv += ["--batch-size", "3", "--device", "cpu", "--amp", "off", "--save-features", str(saved)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)

    query_files = sorted((market_root / "query").iterdir())
    gallery_files = sorted(
        path
        for path in (market_root / "bounding_box_test").iterdir()
        if not path.name.startswith("-1")  # junk crops are not part of the protocol
    )
    assert report["num_query"] == len(query_files)
    assert report["num_gallery"] == len(gallery_files)
    assert 0 < report["num_valid_query"] <= report["num_query"]
    assert 0.0 <= report["mAP"] <= 1.0 and 0.0 <= report["mINP"] <= 1.0
    assert report["flip"] is True and report["source"]["trained"] is True
    assert report["timing"]["feature_extraction_s"] > 0

    with np.load(saved) as archive:
        arrays = {key: archive[key] for key in FEATURE_KEYS}
    expected_labels = [parse_market_filename(path.name) for path in query_files]
    assert list(zip(arrays["query_pids"], arrays["query_camids"], strict=True)) == expected_labels
    assert arrays["gallery_features"].shape == (len(gallery_files), 512)

    # The saved row for the last query is that file's own flip-averaged embedding.
    model, _ = load_checkpoint(checkpoint_dir)
    crop = preprocess(decode_image(query_files[-1].read_bytes()), model.config.input_size)
    crop = crop.unsqueeze(0)
    with torch.no_grad():
        own = torch.nn.functional.normalize(model.embed(crop) + model.embed(crop.flip(3)), dim=1)
    np.testing.assert_allclose(arrays["query_features"][-1], own[0].numpy(), atol=1e-5)

    # Re-scoring the saved features gives the same metrics without the network.
    assert main(["--features", str(saved)]) == 0
    rescored = json.loads(capsys.readouterr().out)
    for key in ("mAP", "mINP", "cmc", "num_query", "num_valid_query", "num_gallery"):
        assert rescored[key] == report[key]


def test_corrupt_checkpoint_is_a_usage_error(
    tmp_path: Path, market_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"\x00" * 10)
    (broken / "model_card.json").write_text("{not json")
    assert main(["--checkpoint", str(broken), "--data-dir", str(market_root)]) == 2
    err = capsys.readouterr().err
    assert "error: --checkpoint:" in err and "model_card.json is not valid JSON" in err


def test_missing_market_folders_are_named(
    tmp_path: Path, checkpoint_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "query").mkdir()
    assert main(["--checkpoint", str(checkpoint_dir), "--data-dir", str(tmp_path)]) == 2
    assert "is not a Market-1501 folder: missing bounding_box_test/" in capsys.readouterr().err


def test_undecodable_crop_stops_the_run_naming_the_file(
    tmp_path: Path, market_root: Path, checkpoint_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "market"
    for split in ("query", "bounding_box_test"):
        (root / split).mkdir(parents=True)
        for path in (market_root / split).iterdir():
            (root / split / path.name).write_bytes(path.read_bytes())
    victim = sorted((root / "bounding_box_test").glob("0*.jpg"))[-1]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated JPEG
    output = tmp_path / "report.json"
    argv = ["--checkpoint", str(checkpoint_dir), "--data-dir", str(root), "--output", str(output)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"cannot read image {victim}" in err and "truncated or corrupt" in err
    assert not output.exists()


def test_checkpoint_on_a_duke_folder(
    tmp_path: Path, checkpoint_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = duke_fixture(tmp_path / "duke")
    argv = ["--checkpoint", str(checkpoint_dir), "--data-dir", str(root), "--layout", "duke"]
    assert main([*argv, "--device", "cpu", "--amp", "off"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["num_query"], report["num_gallery"]) == (2, 4)
    assert report["num_valid_query"] == 2


def test_wrong_layout_for_the_folder_is_a_usage_error(
    market_root: Path, checkpoint_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--checkpoint", str(checkpoint_dir), "--data-dir", str(market_root)]
    assert main([*argv, "--layout", "duke", "--device", "cpu"]) == 2
    assert "not named like DukeMTMC-reID crops" in capsys.readouterr().err
