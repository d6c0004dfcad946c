"""Optimiser and learning-rate schedule for the re-identification recipe.

The schedule is the BoT one: linear warm-up from ``warmup_start_factor * lr`` to
``lr`` over the first epochs (a randomly initialised BNNeck/classifier plus a
large lr diverges otherwise), then multiply by ``gamma`` at each milestone. It
is evaluated per batch on a fractional epoch, so warm-up is smooth even when an
epoch has only a handful of batches.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from training.config import TrainConfig


def lr_factor(
    epoch: float,
    *,
    warmup_epochs: int,
    warmup_start_factor: float,
    milestones: Iterable[int],
    gamma: float,
) -> float:
    """Multiplier on the base lr at (fractional, 0-based) ``epoch``."""
    warm = 1.0
    if epoch < warmup_epochs:
        warm = warmup_start_factor + (1.0 - warmup_start_factor) * (epoch / warmup_epochs)
    decays = sum(1 for milestone in milestones if epoch >= milestone)
    return warm * gamma**decays


def build_optimizer(
    modules: Iterable[nn.Module], config: TrainConfig, *, heads: Iterable[nn.Module] = ()
) -> torch.optim.Optimizer:
    """SGD with momentum or Adam over every trainable parameter of ``modules``.

    The criterion is passed alongside the network: its pair-verification head
    has weights of its own, and leaving them out would freeze it at its random
    initialisation without any error.

    With ``backbone_lr_factor`` below 1, every parameter outside ``heads`` (the
    classifiers) learns at that fraction of the lr, as in the seed paper's code, where
    everything but the freshly initialised classifiers gets 0.1x. Each group carries
    its ``lr_scale`` for `EpochSchedule`.
    """
    params = [p for module in modules for p in module.parameters() if p.requires_grad]
    head_ids = {id(p) for module in heads for p in module.parameters()}
    groups: list[dict[str, Any]] = [{"params": params, "lr_scale": 1.0}]
    if config.backbone_lr_factor != 1.0:
        groups = [
            {
                "params": [p for p in params if id(p) not in head_ids],
                "lr_scale": config.backbone_lr_factor,
            },
            {"params": [p for p in params if id(p) in head_ids], "lr_scale": 1.0},
        ]
        groups = [group for group in groups if group["params"]]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.momentum > 0,
        )
    return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)


class EpochSchedule:
    """Sets the lr before every step from where that step falls in its own epoch.

    The position is (epoch, batch, batches in that epoch), not a global step count
    divided by a steps-per-epoch planned once at start-up: the identity sampler's
    epochs differ in length, so a planned count drifts, and warm-up would end and
    milestones fire at the wrong batches (and a resumed run would inherit the old
    count). Nothing needs saving: the epoch number is the position.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
        self.optimizer = optimizer
        self.config = config

    def factor(self, epoch: int, batch: int, batches: int) -> float:
        """The multiplier on the base lr at batch ``batch`` (0-based) of 1-based ``epoch``."""
        if batches < 1 or not 0 <= batch < batches:
            raise ValueError(f"batch {batch} is not inside an epoch of {batches} batches")
        return lr_factor(
            (epoch - 1) + batch / batches,
            warmup_epochs=self.config.warmup_epochs,
            warmup_start_factor=self.config.warmup_start_factor,
            milestones=self.config.lr_milestones,
            gamma=self.config.lr_gamma,
        )

    def apply(self, epoch: int, batch: int, batches: int) -> float:
        """Set every parameter group's lr for this batch (times the group's ``lr_scale``);
        returns the unscaled lr, the heads' lr."""
        lr = self.config.lr * self.factor(epoch, batch, batches)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr
