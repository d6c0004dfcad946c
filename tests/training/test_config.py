"""Config layering (defaults < preset < file < flags) and its validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from model.config import ModelConfig
from training.config import (
    MODEL_FIELDS,
    ConfigError,
    TrainConfig,
    from_mapping,
)
from training.config_sources import (
    build_config,
    load_preset,
    parse_loss_weights,
    preset_names,
)

REQUIRED_PRESETS = {
    "market1501-resnet50",
    "bot-adam",
    "cpu-synthetic",
    "test-tiny",
    "market1501-cpu",
    "uanet-authors",
}


def test_required_presets_ship():
    assert set(preset_names()) >= REQUIRED_PRESETS


@pytest.mark.parametrize("name", sorted(REQUIRED_PRESETS))
def test_every_preset_is_valid(name):
    config = build_config(preset=name, config_file=None, overrides={})
    assert isinstance(config, TrainConfig)
    assert config.batch_size == config.batch_p * config.batch_k


def test_paper_recipe_preset():
    config = build_config(preset="market1501-resnet50", config_file=None, overrides={})
    assert (config.arch, config.optimizer, config.lr) == ("resnet50", "sgd", 0.04)
    assert (config.momentum, config.weight_decay) == (0.9, 5e-4)
    assert (config.batch_p, config.batch_k, config.warmup_epochs) == (16, 4, 10)
    assert config.lr_milestones == (30, 60) and config.lr_gamma == 0.1


def test_bot_preset_uses_adam_schedule():
    config = build_config(preset="bot-adam", config_file=None, overrides={})
    assert (config.optimizer, config.lr, config.epochs) == ("adam", 3.5e-4, 120)
    assert config.lr_milestones == (40, 70)


def test_layers_apply_in_order(tmp_path):
    file = tmp_path / "run.toml"
    file.write_text("lr = 0.01\nepochs = 7\n[loss_weights]\nuniformity = 0.0\n")
    config = build_config(preset="bot-adam", config_file=file, overrides={"epochs": 3})
    assert config.optimizer == "adam"  # from the preset
    assert config.lr == 0.01  # the file beats the preset
    assert config.epochs == 3  # a flag beats the file
    # A partial loss table overrides only what it names.
    assert config.loss_weights["uniformity"] == 0.0
    assert (
        config.loss_weights["verification"]
        == load_preset("bot-adam")["loss_weights"]["verification"]
    )


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"arch": "vgg16"}, "arch"),
        ({"attention": "sideways"}, "attention"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"epochs": 0}, "epochs"),
        ({"batch_p": 1}, "batch_p"),
        ({"lr": -1.0}, "lr"),
        ({"lr_milestones": [30, 10]}, "lr_milestones"),
        ({"epochs": "ten"}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"learning_rate": 0.1}, "learning_rate"),
        ({"loss_weights": {"centre": 1.0}}, "centre"),
        ({"loss_weights": {"triplet": -1.0}}, "triplet"),
        (
            {"loss_weights": {"identity": 0.0, "triplet": 0.0, "verification": 0.0}},
            "at least one",
        ),
    ],
)
def test_bad_values_name_the_key(values, fragment):
    with pytest.raises(ConfigError, match=fragment):
        from_mapping(values)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"nope.*cpu-synthetic"):
        load_preset("nope")


def test_unreadable_and_invalid_config_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        build_config(preset=None, config_file=tmp_path / "missing.toml", overrides={})
    broken = tmp_path / "broken.toml"
    broken.write_text("lr = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        build_config(preset=None, config_file=broken, overrides={})


def test_loss_weight_flag_syntax():
    assert parse_loss_weights("id=1,triplet=1,verification=0.5,uniformity=0.1") == {
        "identity": 1.0,
        "triplet": 1.0,
        "verification": 0.5,
        "uniformity": 0.1,
    }
    for bad in ("id", "colour=1", "id=x", ""):
        with pytest.raises(ConfigError):
            parse_loss_weights(bad)


def test_to_dict_round_trips_through_from_mapping():
    config = from_mapping({"data_dir": "/data/market", "lr_milestones": [5, 9], "epochs": 12})
    again = from_mapping(config.to_dict())
    assert again == config
    assert again.data_dir == (Path("/data/market"),)


def test_every_model_field_is_a_run_field_with_the_same_default():
    run_fields = {item.name: item for item in dataclasses.fields(TrainConfig)}
    model_fields = {item.name: item for item in dataclasses.fields(ModelConfig)}
    assert set(MODEL_FIELDS) == set(model_fields) - {"num_classes"}
    for name in MODEL_FIELDS:
        assert name in run_fields, name
        assert run_fields[name].default == model_fields[name].default, name


def test_model_config_is_derived_from_the_run_fields():
    config = from_mapping(
        {
            "arch": "resnet18",
            "last_stride": 2,
            "attention": "channel",
            "head": "two_fc",
            "attention_combination": "residual",
            "channel_reduction": 8,
        }
    )
    assert config.model_config(num_classes=7) == ModelConfig(
        arch="resnet18",
        last_stride=2,
        attention="channel",
        num_classes=7,
        channel_reduction=8,
        head="two_fc",
        attention_combination="residual",
    )


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"head": "mlp"}, "head"),
        ({"attention_combination": "additive"}, "attention_combination"),
        ({"last_stride": 3}, "last_stride"),
        # The bound depends on the architecture, which only ModelConfig knows.
        ({"arch": "resnet18", "channel_reduction": 512}, "channel_reduction"),
    ],
)
def test_model_fields_are_validated_by_model_config(values, fragment):
    with pytest.raises(ConfigError, match=fragment):
        from_mapping(values)


def test_the_authors_recipe_preset():
    """DasolJeong/UANet train.py: SGD 0.04, 0.1x on all but the classifiers, 40/60/80 of 100."""
    config = build_config(preset="uanet-authors", config_file=None, overrides={})
    assert (config.arch, config.last_stride, config.head) == ("resnet50", 2, "two_fc")
    assert (config.optimizer, config.lr, config.backbone_lr_factor) == ("sgd", 0.04, 0.1)
    assert (config.momentum, config.weight_decay, config.warmup_epochs) == (0.9, 5e-4, 0)
    assert (config.lr_milestones, config.lr_gamma, config.epochs) == ((40, 60, 80), 0.1, 100)
    assert (config.random_erasing, config.label_smoothing) == (0.5, 0.0)
    assert config.loss_weights["triplet"] == config.loss_weights["uniformity"] == 0.0


def test_the_cpu_market_preset_trains_at_the_native_size_from_memory():
    config = build_config(preset="market1501-cpu", config_file=None, overrides={})
    assert (config.input_height, config.input_width) == (128, 64)
    assert config.decode_once and config.workers == 0
    assert config.pretrained is None
