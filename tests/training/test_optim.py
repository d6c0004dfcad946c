"""The learning-rate schedule and which parameters the optimiser updates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.config import ConfigError, from_mapping
from training.optim import EpochSchedule, build_optimizer, lr_factor


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


def _schedule() -> tuple[EpochSchedule, torch.optim.Optimizer]:
    config = from_mapping(
        {"lr": 0.04, "warmup_epochs": 2, "lr_milestones": [3], "warmup_start_factor": 0.1}
    )
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=config.lr)
    return EpochSchedule(optimizer, config), optimizer


def test_the_schedule_follows_each_epochs_own_batches():
    schedule, optimizer = _schedule()
    assert schedule.apply(1, 0, 4) == pytest.approx(0.004)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.004)
    assert schedule.apply(2, 0, 4) == pytest.approx(0.04 * (0.1 + 0.9 * 0.5))  # epoch 1.0
    # Epochs of different lengths: the middle of epoch 2 is epoch 1.5 however long it is.
    for batches in (2, 5, 7, 100):
        assert schedule.apply(2, batches // 2, batches) == pytest.approx(
            0.04 * (0.1 + 0.9 * (1 + (batches // 2) / batches) / 2)
        )
    assert schedule.apply(3, 0, 9) == pytest.approx(0.04)  # warm-up done
    assert schedule.apply(3, 8, 9) == pytest.approx(0.04)  # last batch before the milestone
    assert schedule.apply(4, 0, 3) == pytest.approx(0.004)  # the milestone, at epoch 4's start


@pytest.mark.parametrize(("batch", "batches"), [(-1, 4), (4, 4), (0, 0)])
def test_a_position_outside_the_epoch_is_refused(batch, batches):
    schedule, _ = _schedule()
    with pytest.raises(ValueError, match="not inside an epoch"):
        schedule.apply(1, batch, batches)


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


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_the_backbone_learns_at_its_factor_and_the_heads_at_the_full_rate(name):
    body, classifier, verification = nn.Linear(4, 3), nn.Linear(3, 2), nn.Linear(3, 1)
    config = from_mapping(
        {"optimizer": name, "lr": 0.04, "backbone_lr_factor": 0.1, "warmup_epochs": 0}
    )
    optimizer = build_optimizer(
        [nn.Sequential(body, classifier), verification],
        config,
        heads=[classifier, verification],
    )
    assert EpochSchedule(optimizer, config).apply(1, 0, 5) == pytest.approx(0.04)
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert [rates[id(p)] for p in body.parameters()] == pytest.approx([0.004] * 2)
    heads = [*classifier.parameters(), *verification.parameters()]
    assert [rates[id(p)] for p in heads] == pytest.approx([0.04] * 4)


@pytest.mark.parametrize("factor", [0, -0.1, 1.5])
def test_a_backbone_factor_outside_zero_to_one_is_refused(factor):
    with pytest.raises(ConfigError, match="backbone_lr_factor"):
        from_mapping({"backbone_lr_factor": factor})
