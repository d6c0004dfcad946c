"""The "auto" compute switches, and the bf16 step they enable on CPU."""

from __future__ import annotations

import pytest
import torch

from model.compute import ComputeSettings, has_fast_bf16
from model.config import ModelConfig
from model.losses.criterion import LossWeights, ReIDCriterion
from model.network import build_model

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("bf16", "channels_last", "expected"),
    [("on", "off", (True, False)), ("off", "on", (False, True)), ("off", "off", (False, False))],
)
def test_explicit_switches_win_over_the_host(
    bf16: str, channels_last: str, expected: tuple[bool, bool]
) -> None:
    settings = ComputeSettings.resolve(CPU, bf16, channels_last)
    assert (settings.bf16, settings.channels_last) == expected


def test_auto_follows_native_bf16_on_cpu() -> None:
    settings = ComputeSettings.resolve("cpu")
    assert settings.bf16 is has_fast_bf16(CPU)
    assert settings.channels_last is has_fast_bf16(CPU)


def test_auto_is_on_for_cuda() -> None:
    settings = ComputeSettings.resolve("cuda")
    assert settings.bf16 and settings.channels_last


def test_unknown_switch_is_refused() -> None:
    with pytest.raises(ValueError, match="bf16 must be one of"):
        ComputeSettings.resolve(CPU, "yes")


def test_bf16_channels_last_step_matches_fp32_loss() -> None:
    """The fast CPU path must compute the same objective, not just run."""
    torch.manual_seed(0)
    network = build_model(ModelConfig(arch="resnet18", num_classes=4, last_stride=2))
    criterion = ReIDCriterion(4, network.config.embedding_dim, LossWeights())
    images = torch.randn(8, 3, 256, 128)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    network.train()
    losses = []
    for switch in ("off", "on"):
        settings = ComputeSettings.resolve(CPU, switch, switch)
        settings.prepare(network)
        with settings.autocast():
            loss, _ = criterion(network(settings.to_device(images)), pids)
        assert loss.dtype == torch.float32
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=0.05)
