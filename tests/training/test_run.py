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

TINY_FLAGS = [
    "--arch", "resnet18",
    "--last-stride", "2",
    "--batch-p", "3",
    "--batch-k", "2",
    "--workers", "0",
    "--eval-every", "1",
    "--lr", "0.01",
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


def test_run_logs_every_epoch(tiny_run: Path):
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    for row in rows:
        for key in ("loss", "loss_identity", "loss_triplet", "lr", "images_per_s", "mAP"):
            assert isinstance(row[key], float), key
        assert row["images"] > 0
    csv_lines = (tiny_run / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,lr,loss")
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


def test_resume_refuses_a_different_architecture(tiny_data: Path, tiny_run: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _train(tiny_data, tiny_run, "--epochs", "3", "--resume", "--attention", "none")
    assert exit_info.value.code == 2
    assert "attention" in capsys.readouterr().err
