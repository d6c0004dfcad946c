"""One training epoch and one evaluation pass; no files, no config parsing.

Keeping these free of I/O decisions lets the run orchestrator (training/run.py)
own what gets written where, and lets the benchmark time exactly the step the
trainer runs.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from model.compute import ComputeSettings
from model.evaluation.features import extract_features
from model.evaluation.metrics import ReIDMetrics, compute_reid_metrics
from model.network import ReIDNet
from training.optim import EpochSchedule


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; continuing would only corrupt the weights."""


class TrainingObjective(nn.Module):
    """The network and its criterion as one module.

    Wrapping both lets DistributedDataParallel synchronise the criterion's own
    parameters (the pair-verification head) along with the network's.
    """

    def __init__(self, network: ReIDNet, criterion: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.criterion = criterion

    def forward(
        self, images: torch.Tensor, pids: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return self.criterion(self.network(images), pids)


@dataclass
class EpochStats:
    """Image-weighted mean of every loss term over an epoch, plus its throughput."""

    images: int = 0
    steps: int = 0
    seconds: float = 0.0
    lr: float = 0.0  # at the epoch's first batch
    lr_end: float = 0.0  # at its last: a milestone inside the epoch shows here
    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def means(self) -> dict[str, float]:
        return {name: total / max(1, self.images) for name, total in self.sums.items()}


def train_step(
    objective: nn.Module,
    images: torch.Tensor,
    pids: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    compute: ComputeSettings,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One optimisation step on one batch; the throughput benchmark times exactly this."""
    images = compute.to_device(images)
    pids = pids.to(compute.device, non_blocking=True)
    with compute.autocast():
        loss, terms = objective(images, pids)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, terms


def train_one_epoch(
    objective: nn.Module,
    loader: DataLoader[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    schedule: EpochSchedule,
    compute: ComputeSettings,
    *,
    epoch: int,
    description: str = "train",
    show_progress: bool = True,
) -> EpochStats:
    """Run one pass over ``loader`` (1-based ``epoch``), setting the lr before each batch."""
    objective.train()
    stats = EpochStats()
    batches = len(loader)
    start = time.perf_counter()
    bar = tqdm(
        loader,
        total=batches,
        desc=description,
        unit="batch",
        # None: draw only on a terminal, so redirected logs stay free of \r spam.
        disable=None if show_progress else True,
        leave=False,
        dynamic_ncols=True,
    )
    for batch, (images, pids, _camids) in enumerate(bar):
        lr = schedule.apply(epoch, batch, batches)
        stats.lr = lr if batch == 0 else stats.lr
        stats.lr_end = lr
        loss, terms = train_step(objective, images, pids, optimizer, compute)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise TrainingDivergedError(
                f"loss became {loss_value} ({description}); lower the lr or check the data"
            )
        count = int(images.shape[0])
        stats.images += count
        stats.steps += 1
        stats.sums["loss"] += loss_value * count
        terms = {name: value for name, value in terms.items() if name != "total"}
        for name, value in terms.items():
            stats.sums[f"loss_{name}"] += float(value) * count
        stats.seconds = time.perf_counter() - start
        bar.set_postfix(
            {"loss": f"{loss_value:.3f}"}
            | {name: f"{float(value):.3f}" for name, value in terms.items()}
            | {"img/s": f"{stats.images_per_s:.1f}"}
        )
    bar.close()
    stats.seconds = time.perf_counter() - start
    return stats


@dataclass
class SplitFeatures:
    """Embeddings of one evaluation split, row-aligned with its pids and camids."""

    features: torch.Tensor
    pids: torch.Tensor
    camids: torch.Tensor
    spatial_masks: torch.Tensor | None = None  # (N, 1, h, w) when asked for


def extract_split(
    network: ReIDNet,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    compute: ComputeSettings,
    *,
    flip: bool = False,
    with_masks: bool = False,
) -> SplitFeatures:
    """Embed a query or gallery split; pids and camids are gathered as the batches stream by.

    ``with_masks`` also keeps each crop's spatial attention mask, from the same forward.
    """
    masks: list[torch.Tensor] | None = [] if with_masks else None
    pids: list[torch.Tensor] = []
    camids: list[torch.Tensor] = []

    def images() -> Iterator[torch.Tensor]:
        for batch, batch_pids, batch_camids in loader:
            pids.append(torch.as_tensor(batch_pids))
            camids.append(torch.as_tensor(batch_camids))
            yield batch

    features = extract_features(network, images(), compute=compute, flip=flip, spatial_masks=masks)
    return SplitFeatures(
        features=features,
        pids=torch.cat(pids),
        camids=torch.cat(camids),
        spatial_masks=None if masks is None else torch.cat(masks),
    )


@dataclass
class EvaluationResult:
    metrics: ReIDMetrics
    query: SplitFeatures
    gallery: SplitFeatures


def evaluate(
    network: ReIDNet,
    query_loader: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    gallery_loader: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    compute: ComputeSettings,
    *,
    flip: bool = False,
) -> EvaluationResult:
    """Market-1501 protocol metrics of ``network`` on a query/gallery split.

    With spatial attention, the query crops' masks are kept (``query.spatial_masks``) so
    the run can report whether they follow each crop.
    """
    with_masks = network.config.uses_spatial_attention
    query = extract_split(network, query_loader, compute, flip=flip, with_masks=with_masks)
    gallery = extract_split(network, gallery_loader, compute, flip=flip)
    metrics = compute_reid_metrics(
        query.features,
        gallery.features,
        query.pids,
        gallery.pids,
        query.camids,
        gallery.camids,
    )
    return EvaluationResult(metrics=metrics, query=query, gallery=gallery)
