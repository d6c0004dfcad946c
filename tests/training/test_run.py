"""End to end: a truly tiny training run on generated data, then resume.

One module-scoped run (resnet18, a few dozen crops, 2 epochs) is shared by the
output checks; resume is checked against an uninterrupted run with the same
seed, which must produce the same weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from model.checkpoint import load_checkpoint
from training.data.synthetic import generate_synthetic_market
from training.run import main

# lr 0.003: at 0.01 this run's spatial masks saturated within two epochs (every value 0 in
# fp32, 1 under bf16) on an Intel host with AMX while an AMD host kept them alive; the
# trainer now warns of such a collapse (MaskStatistics.collapse).
TINY_FLAGS = [
    "--arch", "resnet18",
    "--last-stride", "2",
    "--batch-p", "3",
    "--batch-k", "2",
    "--workers", "0",
    "--eval-every", "1",
    "--lr", "0.003",
    "--warmup-epochs", "1",
    "--device", "cpu",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "market"
    return generate_synthetic_market(
        root, num_train_ids=4, num_test_ids=3, num_cameras=2, images_per_id_per_camera=2, seed=3
    )


def _train(data: Path, output: Path, *extra: str) -> int:
    return main(["--data-dir", str(data), "--output-dir", str(output), *TINY_FLAGS, *extra])


@pytest.fixture(scope="module")
def tiny_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("run")
    assert _train(tiny_data, output, "--epochs", "2") == 0
    return output


def test_run_writes_loadable_best_and_last_checkpoints(tiny_run: Path):
    for name in ("best", "last"):
        network, card = load_checkpoint(tiny_run / name)
        assert card.trained
        assert card.config.arch == "resnet18"
        assert card.config.num_classes == 4  # the training identities
        assert card.training_data["train_identities"] == 4
        assert 0.0 <= card.metrics["mAP"] <= 1.0
        embedding = network.eval().embed(torch.zeros(1, 3, 256, 128))
        assert embedding.shape == (1, 512)
    last = json.loads((tiny_run / "last" / "model_card.json").read_text())
    assert last["training_data"]["epochs_trained"] == 2
    # The trained masks differ from crop to crop: spread across crops, no flat mask.
    masks = last["metrics"]["spatial_attention"]
    assert masks["crops"] > 0 and masks["flat_masks"] == 0
    assert masks["spread_across_crops"] > 1e-3 and masks["correlation_with_mean"] < 0.999


def test_run_logs_every_epoch(tiny_run: Path):
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    for row in rows:
        for key in ("loss", "loss_identity", "loss_triplet", "lr", "lr_end", "images_per_s", "mAP"):
            assert isinstance(row[key], float), key
        assert row["images"] > 0
        assert row["wall_seconds"] > 0 and -1 <= row["attention_correlation"] <= 1
    csv_lines = (tiny_run / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,lr,lr_end,loss")
    assert len(csv_lines) == 3


def test_run_draws_the_three_plots(tiny_run: Path):
    for name in ("cmc.png", "attention.png", "ranked_lists.png"):
        path = tiny_run / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_run_refuses_to_overwrite_a_run(tiny_data: Path, tiny_run: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _train(tiny_data, tiny_run, "--epochs", "2")
    assert exit_info.value.code == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_continues_exactly_where_it_stopped(tiny_data: Path, tiny_run: Path, tmp_path):
    # Stop after epoch 1, then resume to epoch 2: same weights as the straight run.
    assert _train(tiny_data, tmp_path, "--epochs", "1") == 0
    assert _train(tiny_data, tmp_path, "--epochs", "2", "--resume") == 0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    resumed = load_file(str(tmp_path / "last" / "model.safetensors"))
    straight = load_file(str(tiny_run / "last" / "model.safetensors"))
    assert resumed.keys() == straight.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], msg=key)
    state = json.loads((tmp_path / "resume" / "trainer_state.json").read_text())
    assert state["progress"]["epoch"] == 2


def test_a_resume_with_a_new_schedule_is_recorded_in_the_card(tiny_data: Path, tmp_path):
    assert _train(tiny_data, tmp_path, "--epochs", "1") == 0
    assert _train(tiny_data, tmp_path, "--epochs", "3", "--resume", "--lr-milestones", "2") == 0
    history = load_checkpoint(tmp_path / "last")[1].training_data["schedule_history"]
    assert [entry["from_epoch"] for entry in history] == [1, 2]
    assert history[1]["lr_milestones"] == [2] and history[1]["epochs"] == 3
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    base = history[1]["lr"]
    # Epoch 3 starts past the milestone: its first and last batch both run at lr x gamma.
    assert rows[2]["lr"] == pytest.approx(base * history[1]["lr_gamma"])
    assert rows[2]["lr_end"] == rows[2]["lr"]
    assert rows[1]["lr"] == pytest.approx(base)


def test_resume_refuses_a_different_architecture(tiny_data: Path, tiny_run: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _train(tiny_data, tiny_run, "--epochs", "3", "--resume", "--attention", "none")
    assert exit_info.value.code == 2
    assert "attention" in capsys.readouterr().err


def test_a_run_too_small_to_hold_out_identities_says_so(tiny_run: Path):
    card = load_checkpoint(tiny_run / "best")[1]
    assert card.calibration is None  # 10% of 4 training identities is no calibration set
    assert card.training_data["calibration_identities"] == 0


def test_held_out_identities_calibrate_both_cards(tmp_path: Path, capsys):
    data = generate_synthetic_market(
        tmp_path / "market",
        num_train_ids=9,
        num_test_ids=2,
        num_cameras=2,
        images_per_id_per_camera=3,
        seed=5,
    )
    flags = ["--epochs", "1", "--calibration-fraction", "0.67", "--no-plots"]
    assert _train(data, tmp_path / "run", *flags) == 0
    assert "calibrated best/" in capsys.readouterr().out
    cards = {name: load_checkpoint(tmp_path / "run" / name)[1] for name in ("best", "last")}
    for card in cards.values():
        assert card.config.num_classes == 3  # 6 of the 9 identities were held out
        assert card.training_data["calibration_identities"] == 6
        calibration = card.calibration
        assert calibration is not None
        assert calibration.counts["enrolled_identities"] == 6
        # each identity enrolls 3 of its 6 crops and probes with 3, against the 5 others
        assert calibration.counts["impostor_scores"] == 6 * 3 * 5
        assert set(calibration.thresholds) == {"0.1", "0.01", "0.001"}
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["calibration_fraction"] == 0.67


def test_calibration_fraction_is_validated(tiny_data: Path, tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _train(tiny_data, tmp_path, "--calibration-fraction", "1.0")
    assert exit_info.value.code == 2
    assert "calibration_fraction must be in [0, 1)" in capsys.readouterr().err
