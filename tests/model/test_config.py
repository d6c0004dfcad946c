import pytest

from model.config import ModelConfig


def test_defaults_match_the_paper_setup() -> None:
    config = ModelConfig()
    assert (config.arch, config.last_stride, config.attention) == ("resnet50", 1, "both")
    assert config.embedding_dim == 2048
    assert config.attention_combination == "multiplicative"


@pytest.mark.parametrize(
    ("arch", "dim"), [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048), ("resnet101", 2048)]
)
def test_embedding_dim_follows_arch(arch: str, dim: int) -> None:
    assert ModelConfig(arch=arch).embedding_dim == dim


def test_dict_round_trip() -> None:
    config = ModelConfig(arch="resnet18", attention="spatial", num_classes=10, head="two_fc")
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_missing_keys_take_defaults() -> None:
    assert ModelConfig.from_dict({"arch": "resnet34"}) == ModelConfig(arch="resnet34")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"arch": "vgg16"}, "arch"),
        ({"attention": "all"}, "attention"),
        ({"head": "mlp"}, "head"),
        ({"attention_combination": "additive"}, "attention_combination"),
        ({"last_stride": 3}, "last_stride"),
        ({"last_stride": True}, "last_stride"),
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": "751"}, "num_classes"),
        ({"channel_reduction": 0}, "channel_reduction"),
        ({"arch": "resnet18", "channel_reduction": 512}, "channel_reduction"),
        ({"colour": "red"}, "colour"),
        ({"input_height": 0}, "input_height"),
        ({"input_height": 30}, "input_height"),
        ({"input_width": 100}, "input_width"),
        ({"input_width": 16}, "input_width"),
        ({"input_height": True}, "input_height"),
        ({"input_width": "128"}, "input_width"),
    ],
)
def test_bad_values_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        ModelConfig.from_dict(data)


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(ValueError, match="mapping"):
        ModelConfig.from_dict(["resnet50"])  # type: ignore[arg-type]
