"""Optimiser and learning-rate schedule for the re-identification recipe.

The schedule is the BoT one: linear warm-up from ``warmup_start_factor * lr`` to
``lr`` over the first epochs (a randomly initialised BNNeck/classifier plus a
large lr diverges otherwise), then multiply by ``gamma`` at each milestone. It
is evaluated per iteration on a fractional epoch, so warm-up is smooth even
when an epoch has only a handful of batches.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

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


def build_optimizer(modules: Iterable[nn.Module], config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum or Adam over every trainable parameter of ``modules``.

    The criterion is passed alongside the network: its pair-verification head
    has weights of its own, and leaving them out would freeze it at its random
    initialisation without any error.
    """
    params = [p for module in modules for p in module.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.momentum > 0,
        )
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, iters_per_epoch: int
) -> LambdaLR:
    """A per-iteration scheduler; call ``step()`` after every optimiser step."""
    if iters_per_epoch < 1:
        raise ValueError(f"iters_per_epoch must be >= 1, got {iters_per_epoch}")

    def factor(step: int) -> float:
        return lr_factor(
            step / iters_per_epoch,
            warmup_epochs=config.warmup_epochs,
            warmup_start_factor=config.warmup_start_factor,
            milestones=config.lr_milestones,
            gamma=config.lr_gamma,
        )

    return LambdaLR(optimizer, factor)
