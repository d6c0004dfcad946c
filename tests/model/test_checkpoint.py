import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from model.checkpoint import (
    CARD_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    ModelCard,
    load_checkpoint,
    read_model_card,
    save_checkpoint,
    untrained_model,
)
from model.config import ModelConfig
from model.network import ReIDNet, build_model


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)  # the same weights as the small_model fixture
    model = build_model(ModelConfig(arch="resnet18", num_classes=7))
    directory = tmp_path_factory.mktemp("template") / "best"
    save_checkpoint(
        model,
        directory,
        training_data={"dataset": "synthetic", "num_ids": 7, "root": Path("/data/market")},
        metrics={"mAP": 0.5, "rank1": torch.tensor(0.75)},
    )
    return directory


@pytest.fixture
def saved(tmp_path: Path, template: Path) -> Path:
    """A fresh copy per test, so tests may damage it."""
    return Path(shutil.copytree(template, tmp_path / "best"))


def test_round_trip_gives_identical_embeddings(
    saved: Path, small_model: ReIDNet, images: torch.Tensor
) -> None:
    loaded, card = load_checkpoint(saved)
    assert not loaded.training
    assert card.config == small_model.config
    assert card.trained
    assert card.metrics == {"mAP": 0.5, "rank1": 0.75}
    assert card.training_data["num_ids"] == 7
    assert card.training_data["root"] == "/data/market"
    with torch.no_grad():
        assert torch.equal(loaded.embed(images), small_model.embed(images))


def test_version_is_the_weights_content_hash(saved: Path, small_model: ReIDNet) -> None:
    card = read_model_card(saved)
    digest = hashlib.sha256((saved / WEIGHTS_FILE).read_bytes()).hexdigest()
    assert card.version == digest[:16]
    again = save_checkpoint(small_model, saved.parent / "again", training_data={}, metrics={})
    assert again.version == card.version


def test_saving_over_an_existing_checkpoint_replaces_it(saved: Path) -> None:
    torch.manual_seed(5)
    other = build_model(ModelConfig(arch="resnet18", num_classes=7, attention="none"))
    card = save_checkpoint(other, saved, training_data={}, metrics={"epoch": 2})
    _, loaded_card = load_checkpoint(saved)
    assert loaded_card.version == card.version
    assert loaded_card.config.attention == "none"
    assert sorted(p.name for p in saved.parent.iterdir()) == ["best"]  # no staging left


def test_loading_by_weights_file_path(saved: Path) -> None:
    _, card = load_checkpoint(saved / WEIGHTS_FILE)
    assert card.version == read_model_card(saved).version


def test_card_dict_round_trip(saved: Path) -> None:
    card = read_model_card(saved)
    assert ModelCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    assert card.input_size == (3, 256, 128)


def test_untrained_model_is_deterministic() -> None:
    config = ModelConfig(arch="resnet18", num_classes=3)
    first, first_card = untrained_model(config, seed=3)
    second, second_card = untrained_model(config, seed=3)
    _, other_card = untrained_model(config, seed=4)
    assert not first_card.trained
    assert first_card.version.startswith("untrained-")
    assert first_card.version == second_card.version != other_card.version
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        assert torch.equal(first.embed(x), second.embed(x))


def test_untrained_model_leaves_global_rng_alone() -> None:
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    untrained_model(ModelConfig(arch="resnet18", num_classes=3))
    assert torch.equal(torch.rand(1), expected)


# --- every way a checkpoint can be bad -------------------------------------------------


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nothing")


@pytest.mark.parametrize("name", [WEIGHTS_FILE, CARD_FILE])
def test_missing_file(saved: Path, name: str) -> None:
    (saved / name).unlink()
    with pytest.raises(CheckpointError, match=f"missing {name}"):
        load_checkpoint(saved)


def test_plain_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="expected a directory"):
        load_checkpoint(path)


def test_truncated_weights(saved: Path) -> None:
    data = (saved / WEIGHTS_FILE).read_bytes()
    (saved / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or foreign"):
        load_checkpoint(saved)


def test_random_bytes_as_weights(saved: Path) -> None:
    (saved / WEIGHTS_FILE).write_bytes(bytes(range(256)) * 64)
    with pytest.raises(CheckpointError, match="truncated or foreign"):
        load_checkpoint(saved)


def test_renamed_torch_pickle_is_never_unpickled(saved: Path, small_model: ReIDNet) -> None:
    torch.save(small_model.state_dict(), saved / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(saved)


def test_invalid_card_json(saved: Path) -> None:
    (saved / CARD_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(saved)


def test_binary_card(saved: Path) -> None:
    (saved / CARD_FILE).write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(saved)


def _edit_card(directory: Path, **changes: object) -> None:
    card = json.loads((directory / CARD_FILE).read_text())
    card.update(changes)
    (directory / CARD_FILE).write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"config": {"arch": "resnet18", "head": "mlp"}}, "'config' is invalid: head"),
        ({"config": {"arch": "resnet18", "num_classes": 7, "depth": 3}}, "depth"),
        ({"embedding_dim": 2048}, "'embedding_dim'"),
        ({"input_size": [256, 128]}, "'input_size'"),
        ({"input_size": [3, 128, 64]}, r"'input_size' is \[3, 128, 64\] but its config says"),
        ({"trained": "yes"}, "'trained'"),
        ({"metrics": [1, 2]}, "'metrics'"),
    ],
)
def test_invalid_card_contents(saved: Path, changes: dict, message: str) -> None:
    _edit_card(saved, **changes)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(saved)


def test_card_missing_keys(saved: Path) -> None:
    (saved / CARD_FILE).write_text(json.dumps({"config": {}}))
    with pytest.raises(CheckpointError, match="missing key"):
        load_checkpoint(saved)


def test_card_is_not_an_object(saved: Path) -> None:
    (saved / CARD_FILE).write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError, match="JSON object"):
        load_checkpoint(saved)


def test_card_paired_with_other_weights(saved: Path, tmp_path: Path) -> None:
    torch.manual_seed(9)
    other = build_model(ModelConfig(arch="resnet18", num_classes=7))
    save_checkpoint(other, tmp_path / "other", training_data={}, metrics={})
    (saved / WEIGHTS_FILE).write_bytes((tmp_path / "other" / WEIGHTS_FILE).read_bytes())
    with pytest.raises(CheckpointError, match="do not belong together"):
        load_checkpoint(saved)


def test_weights_of_a_different_architecture(saved: Path) -> None:
    # A self-consistent card (version matches) whose config disagrees with the tensors.
    card = json.loads((saved / CARD_FILE).read_text())
    card["config"]["attention"] = "none"
    (saved / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(
        CheckpointError, match=r"do not fit the architecture.*unexpected: attention"
    ):
        load_checkpoint(saved)


def test_wrong_tensor_shapes(saved: Path) -> None:
    _edit_card(saved, config={"arch": "resnet18", "num_classes": 9})
    with pytest.raises(CheckpointError, match=r"1 wrong shape: classifier\.fc\.weight \(7, 512\)"):
        load_checkpoint(saved)


def test_non_finite_weights(tmp_path: Path, small_model: ReIDNet) -> None:
    with torch.no_grad():
        small_model.classifier.fc.weight[0, 0] = float("nan")
    directory = tmp_path / "nan"
    save_checkpoint(small_model, directory, training_data={}, metrics={})
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(directory)


def test_foreign_safetensors_file(saved: Path) -> None:
    save_file({"weight": torch.zeros(3)}, str(saved / WEIGHTS_FILE))
    digest = hashlib.sha256((saved / WEIGHTS_FILE).read_bytes()).hexdigest()[:16]
    _edit_card(saved, version=digest)
    with pytest.raises(CheckpointError, match=r"\d+ missing: attention.*1 unexpected: weight"):
        load_checkpoint(saved)


def _calibration():
    import numpy as np

    from model.evaluation.calibration_fit import fit_calibration

    return fit_calibration(np.random.default_rng(0).normal(0.0, 0.1, size=(40, 10)))


def test_a_calibration_round_trips_and_keeps_the_version(saved: Path) -> None:
    from model.checkpoint import write_model_card

    before = read_model_card(saved)
    assert before.calibration is None
    calibration = _calibration()
    write_model_card(saved, dataclasses.replace(before, calibration=calibration))
    _, after = load_checkpoint(saved)
    assert after.calibration == calibration
    assert after.version == before.version  # same weights, same version
    assert sorted(p.name for p in saved.iterdir()) == sorted([CARD_FILE, WEIGHTS_FILE])


def test_save_checkpoint_records_a_calibration(tmp_path: Path, small_model: ReIDNet) -> None:
    calibration = _calibration()
    card = save_checkpoint(
        small_model, tmp_path / "c", training_data={}, metrics={}, calibration=calibration
    )
    assert read_model_card(tmp_path / "c").calibration == calibration == card.calibration


def test_a_card_without_the_calibration_key_still_loads(saved: Path) -> None:
    data = json.loads((saved / CARD_FILE).read_text())
    data.pop("calibration", None)
    (saved / CARD_FILE).write_text(json.dumps(data))
    assert read_model_card(saved).calibration is None


def test_an_invalid_calibration_is_a_checkpoint_error(saved: Path) -> None:
    data = json.loads((saved / CARD_FILE).read_text())
    data["calibration"] = {**_calibration().to_dict(), "tail_rate": -3.0}
    (saved / CARD_FILE).write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="'calibration' is invalid: tail_rate"):
        read_model_card(saved)


def test_a_card_for_other_weights_is_not_written(saved: Path) -> None:
    from model.checkpoint import write_model_card

    card = dataclasses.replace(read_model_card(saved), version="0123456789abcdef")
    original = (saved / CARD_FILE).read_text()
    with pytest.raises(CheckpointError, match="0123456789abcdef"):
        write_model_card(saved, card)
    assert (saved / CARD_FILE).read_text() == original


def test_the_input_size_travels_with_the_checkpoint(tmp_path: Path) -> None:
    """A 128x64 network is saved, described and reloaded as 128x64, and runs at that size."""
    torch.manual_seed(0)
    config = ModelConfig(arch="resnet18", num_classes=4, input_height=128, input_width=64)
    network = build_model(config).eval()
    save_checkpoint(network, tmp_path / "small", training_data={}, metrics={})
    card_json = json.loads((tmp_path / "small" / CARD_FILE).read_text())
    assert card_json["input_size"] == [3, 128, 64]
    assert (card_json["config"]["input_height"], card_json["config"]["input_width"]) == (128, 64)
    loaded, card = load_checkpoint(tmp_path / "small")
    assert card.config.input_size == (128, 64)
    batch = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed(batch), network.embed(batch))


def test_a_card_from_before_the_size_was_configurable_loads_as_256x128(saved: Path) -> None:
    card = json.loads((saved / CARD_FILE).read_text())
    for key in ("input_height", "input_width"):
        del card["config"][key]
    (saved / CARD_FILE).write_text(json.dumps(card))
    _, loaded = load_checkpoint(saved)
    assert loaded.input_size == (3, 256, 128)
