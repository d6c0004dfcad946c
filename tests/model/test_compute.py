"""The trainer's "auto" device switches and the bf16 step they enable on CPU."""

from __future__ import annotations

import pytest
import torch

from model.config import ModelConfig
from model.losses.criterion import LossWeights, ReIDCriterion
from model.network import build_model
from training.engine import StepSettings, has_fast_bf16

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("amp", "channels_last", "expected"),
    [("on", "off", (True, False)), ("off", "on", (False, True)), ("off", "off", (False, False))],
)
def test_explicit_switches_win_over_the_host(
    amp: str, channels_last: str, expected: tuple[bool, bool]
) -> None:
    settings = StepSettings.resolve(CPU, amp, channels_last)
    assert (settings.autocast, settings.channels_last) == expected


def test_auto_follows_native_bf16_on_cpu() -> None:
    settings = StepSettings.resolve(CPU, "auto", "auto")
    assert settings.autocast is has_fast_bf16(CPU)
    assert settings.channels_last is has_fast_bf16(CPU)


def test_auto_is_on_for_cuda() -> None:
    settings = StepSettings.resolve(torch.device("cuda"), "auto", "auto")
    assert settings.autocast and settings.channels_last


def test_bf16_channels_last_step_matches_fp32_loss() -> None:
    """The fast CPU path must compute the same objective, not just run."""
    torch.manual_seed(0)
    network = build_model(ModelConfig(arch="resnet18", num_classes=4, last_stride=2))
    criterion = ReIDCriterion(4, network.config.embedding_dim, LossWeights())
    images = torch.randn(8, 3, 256, 128)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    network.train()
    losses = []
    for amp in ("off", "on"):
        settings = StepSettings.resolve(CPU, amp, amp)
        if settings.channels_last:
            network.to(memory_format=torch.channels_last)
        torch.manual_seed(1)
        with settings.autocast_context():
            loss, _ = criterion(network(settings.to_device(images)), pids)
        assert loss.dtype == torch.float32
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=0.05)
