"""python -m training.calibrate on a small generated set, and its usage errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from model.checkpoint import read_model_card, save_checkpoint
from model.config import ModelConfig
from model.network import build_model
from training.calibrate import main
from training.data.synthetic import generate_synthetic_market


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("calibrate")
    data = generate_synthetic_market(
        root / "market", num_train_ids=8, num_test_ids=2, num_cameras=2,
        images_per_id_per_camera=2, seed=1,
    )  # fmt: skip
    torch.manual_seed(0)
    network = build_model(ModelConfig(arch="resnet18", last_stride=2, num_classes=8))
    save_checkpoint(network, root / "ckpt", training_data={}, metrics={})
    return data, root / "ckpt"


def test_writes_a_calibration_into_the_card_and_keeps_the_version(
    setup: tuple[Path, Path], tmp_path: Path, capsys
):
    data, template = setup
    checkpoint = Path(shutil.copytree(template, tmp_path / "ckpt"))
    before = read_model_card(checkpoint)
    weights = (checkpoint / "model.safetensors").read_bytes()
    argv = ["--checkpoint", str(checkpoint), "--data-dir", str(data), "--amp", "off"]
    assert main([*argv, "--gallery-identities", "500"]) == 0
    report = json.loads(capsys.readouterr().out)
    after = read_model_card(checkpoint)
    assert after.version == before.version
    assert (checkpoint / "model.safetensors").read_bytes() == weights
    assert after.calibration is not None
    assert after.calibration.to_dict() == report["calibration"]
    assert after.calibration.gallery_identities == 500
    assert after.calibration.counts["enrolled_identities"] == 8
    assert after.calibration.counts["nonmated_probes"] == 16  # 8 identities x 2 probe crops
    assert after.calibration.counts["impostor_scores"] == 16 * 7  # each against the others
    assert after.calibration.confidence is None  # the plain fit, by default


def test_a_confidence_envelope_can_be_asked_for(setup: tuple[Path, Path], tmp_path: Path, capsys):
    data, template = setup
    checkpoint = Path(shutil.copytree(template, tmp_path / "ckpt"))
    argv = ["--checkpoint", str(checkpoint), "--data-dir", str(data), "--amp", "off"]
    assert main([*argv, "--confidence", "0.9"]) == 0
    assert json.loads(capsys.readouterr().out)["calibration"]["confidence"] == 0.9
    assert read_model_card(checkpoint).calibration.confidence == 0.9


def test_folder_layout_is_read(setup: tuple[Path, Path], tmp_path: Path, capsys):
    data, template = setup
    checkpoint = Path(shutil.copytree(template, tmp_path / "ckpt"))
    for crop in sorted((data / "bounding_box_train").iterdir()):
        folder = tmp_path / "folders" / f"person{crop.name[:4]}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(crop, folder / crop.name)
    argv = ["--checkpoint", str(checkpoint), "--data-dir", str(tmp_path / "folders")]
    assert main([*argv, "--layout", "folder", "--amp", "off"]) == 0
    assert read_model_card(checkpoint).calibration is not None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gallery-identities", "0"], "--gallery-identities must be >= 1"),
        (["--device", "tpu9"], "is not a torch device"),
        (["--confidence", "0.3"], "must be in [0.5, 1) or 'none'"),
        (["--confidence", "1"], "must be in [0.5, 1) or 'none'"),
        (["--confidence", "sure"], "is not a number or 'none'"),
    ],
)
def test_usage_errors_exit_2_and_leave_the_card(
    setup: tuple[Path, Path], extra: list[str], message: str, capsys
):
    data, checkpoint = setup
    card = (checkpoint / "model_card.json").read_text()
    assert main(["--checkpoint", str(checkpoint), "--data-dir", str(data), *extra]) == 2
    assert message in capsys.readouterr().err
    assert (checkpoint / "model_card.json").read_text() == card


def test_missing_paths_and_too_small_sets_are_usage_errors(
    setup: tuple[Path, Path], tmp_path: Path, capsys
):
    data, checkpoint = setup
    assert main(["--checkpoint", str(tmp_path / "none"), "--data-dir", str(data)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["--checkpoint", str(checkpoint), "--data-dir", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--checkpoint", str(checkpoint), "--data-dir", str(tmp_path / "empty")]) == 2
    assert "expected bounding_box_train, query, bounding_box_test" in capsys.readouterr().err
    small = tmp_path / "small" / "bounding_box_train"
    small.mkdir(parents=True)
    for folder in ("bounding_box_train", "query", "bounding_box_test"):  # test folders unused
        (small.parent / folder).mkdir(exist_ok=True)
        for crop in sorted((data / "bounding_box_train").iterdir())[:6]:
            shutil.copy(crop, small.parent / folder / crop.name)
    assert main(["--checkpoint", str(checkpoint), "--data-dir", str(small.parent)]) == 2
    assert "cannot calibrate" in capsys.readouterr().err


def test_held_out_of_a_run_calibrates_on_the_identities_it_never_trained_on(
    setup: tuple[Path, Path], tmp_path: Path, capsys
):
    from model.evaluation.layouts.market import load_market1501
    from training.loaders import hold_out_identities

    _, template = setup
    data = generate_synthetic_market(
        tmp_path / "market", num_train_ids=20, num_test_ids=2, num_cameras=2,
        images_per_id_per_camera=2, seed=2,
    )  # fmt: skip
    checkpoint = Path(shutil.copytree(template, tmp_path / "ckpt"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"calibration_fraction": 0.5, "seed": 3}))
    argv = ["--checkpoint", str(checkpoint), "--data-dir", str(data), "--amp", "off"]
    assert main([*argv, "--held-out-of", str(run)]) == 0
    counts = read_model_card(checkpoint).calibration.counts
    _, held_out, _ = hold_out_identities(load_market1501(data).train, 0.5, seed=3)
    assert counts["enrolled_identities"] == 10  # of 20
    assert len({record.pid for record in held_out}) == 10
    capsys.readouterr()
    (run / "config.json").write_text("{}")
    assert main([*argv, "--held-out-of", str(run)]) == 2
    assert "--held-out-of: cannot read" in capsys.readouterr().err
