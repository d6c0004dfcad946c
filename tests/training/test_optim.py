"""The learning-rate schedule and which parameters the optimiser updates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.config import from_mapping
from training.optim import build_optimizer, build_scheduler, lr_factor


def _factor(epoch: float) -> float:
    return lr_factor(
        epoch, warmup_epochs=10, warmup_start_factor=0.01, milestones=(30, 60), gamma=0.1
    )


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (0, 0.01),
        (5, 0.01 + 0.99 * 0.5),
        (9.9, 0.01 + 0.99 * 0.99),
        (10, 1.0),
        (29.99, 1.0),
        (30, 0.1),
        (59, 0.1),
        (60, 0.01),
        (89, 0.01),
    ],
)
def test_warmup_then_steps(epoch, expected):
    assert _factor(epoch) == pytest.approx(expected)


def test_warmup_is_monotonic():
    values = [_factor(e / 10) for e in range(100)]
    assert values == sorted(values)


def test_scheduler_steps_per_iteration_on_fractional_epochs():
    config = from_mapping(
        {"lr": 0.04, "warmup_epochs": 2, "lr_milestones": [3], "warmup_start_factor": 0.1}
    )
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=config.lr)
    scheduler = build_scheduler(optimizer, config, iters_per_epoch=4)
    seen = []
    for _ in range(16):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[0] == pytest.approx(0.004)
    assert seen[4] == pytest.approx(0.04 * (0.1 + 0.9 * 0.5))  # epoch 1.0
    assert seen[8] == pytest.approx(0.04)  # epoch 2: warm-up done
    assert seen[12] == pytest.approx(0.004)  # epoch 3: first milestone


def test_optimizer_covers_network_and_criterion_parameters():
    network, criterion = nn.Linear(4, 3), nn.Linear(3, 1)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    for name in ("sgd", "adam"):
        optimizer = build_optimizer([network, criterion, frozen], from_mapping({"optimizer": name}))
        updated = {id(p) for group in optimizer.param_groups for p in group["params"]}
        expected = {id(p) for p in [*network.parameters(), *criterion.parameters()]}
        assert updated == expected
    assert isinstance(
        build_optimizer([network], from_mapping({"optimizer": "adam"})), torch.optim.Adam
    )
