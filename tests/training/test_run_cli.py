"""`python -m training.run` turns every bad request into a usage error (exit 2)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from training.run import main

RunModule = Callable[..., subprocess.CompletedProcess[str]]  # the run_module fixture


def test_unknown_preset_is_a_usage_error(tmp_path: Path, run_module: RunModule) -> None:
    result = run_module(
        "training.run", "--preset", "nope", "--synthetic", "--output-dir", str(tmp_path / "run")
    )
    assert result.returncode == 2
    assert "nope" in result.stderr
    assert "cpu-synthetic" in result.stderr  # the known presets are listed
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_missing_dataset_folder_names_the_expected_layout(
    tmp_path: Path, run_module: RunModule
) -> None:
    (tmp_path / "market").mkdir()
    result = run_module(
        "training.run",
        "--data-dir",
        str(tmp_path / "market"),
        "--output-dir",
        str(tmp_path / "run"),
    )
    assert result.returncode == 2
    assert "bounding_box_train" in result.stderr
    assert "Traceback" not in result.stderr


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--lr", "-1"], "lr"),
        (["--lr", "abc"], "--lr"),
        (["--epochs", "0"], "epochs"),
        (["--batch-p", "1"], "batch_p"),
        (["--arch", "vgg"], "--arch"),
        (["--attention", "sideways"], "--attention"),
        (["--loss-weights", "colour=1"], "colour"),
        (["--loss-weights", "id=x"], "identity"),
        (["--lr-milestones", "30,x"], "--lr-milestones"),
        (["--config", "/nonexistent/run.toml"], "cannot read"),
        (["--input-height", "100"], "input_height must be a multiple of 16"),
        (["--input-width", "16"], "input_width must be a multiple of 16 and at least 32"),
        (["--input-width", "wide"], "--input-width"),
        (["--backbone-lr-factor", "0"], "backbone_lr_factor must be in (0, 1]"),
        (["--backbone-lr-factor", "nan"], "backbone_lr_factor"),
    ],
)
def test_bad_flag_values(flags, fragment, tmp_path, capsys):
    err = _usage_error(["--synthetic", "--output-dir", str(tmp_path), *flags], capsys)
    assert fragment in err


def test_data_dir_or_synthetic_is_required(tmp_path, capsys):
    assert "--data-dir" in _usage_error(["--output-dir", str(tmp_path)], capsys)


def test_output_dir_is_required(capsys):
    assert "--output-dir" in _usage_error(["--synthetic"], capsys)


def test_nonexistent_dataset_folder(tmp_path, capsys):
    err = _usage_error(
        ["--data-dir", str(tmp_path / "absent"), "--output-dir", str(tmp_path / "run")], capsys
    )
    assert "does not exist" in err


def test_resume_without_state(tmp_path, capsys):
    err = _usage_error(["--synthetic", "--output-dir", str(tmp_path), "--resume"], capsys)
    assert "no resume state" in err


def test_pretrained_must_be_a_file(tmp_path, capsys):
    err = _usage_error(
        ["--synthetic", "--output-dir", str(tmp_path), "--pretrained", str(tmp_path / "w.pth")],
        capsys,
    )
    assert "--pretrained" in err


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--data-dir", "a", "--data-dir", "b", "--layout", "market"] * 1
         + ["--layout", "duke", "--layout", "folder"], "3 layouts for 2 folders"),
        (["--data-dir", "a", "--data-dir", "a"], "data_dir names a more than once"),
        (["--synthetic", "--layout", "duke"], "synthetic data is one generated folder"),
        (["--data-dir", "a", "--layout", "viper"], "invalid choice: 'viper'"),
    ],
)  # fmt: skip
def test_joint_dataset_flags_are_checked(flags, fragment, tmp_path, capsys):
    assert fragment in _usage_error([*flags, "--output-dir", str(tmp_path / "run")], capsys)


def test_one_layout_per_data_dir_pairs_in_order(tmp_path):
    from training.run_cli import build_parser, parse_config

    flags = ["--data-dir", "m", "--layout", "market", "--data-dir", "d", "--layout", "duke"]
    config = parse_config([*flags, "--output-dir", str(tmp_path)], build_parser())
    assert config.datasets() == [("market", Path("m")), ("duke", Path("d"))]
    one_layout = ["--data-dir", "a", "--data-dir", "b", "--layout", "duke"]
    config = parse_config([*one_layout, "--output-dir", str(tmp_path)], build_parser())
    assert config.datasets() == [("duke", Path("a")), ("duke", Path("b"))]
