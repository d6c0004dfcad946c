"""The weighted sum of all training objectives, with every term reported.

Weights are a dataclass rather than constants so the trainer's ablations
(e.g. uniformity off) are a config change; a term that is switched off, or
has nothing to act on (no spatial attention), adds 0 but still appears in the
log, so curves from different runs always have the same columns.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from model.losses.identity import LabelSmoothingCrossEntropy
from model.losses.triplet import BatchHardTripletLoss
from model.losses.uniformity import AttentionUniformityLoss
from model.losses.verification import PairVerificationLoss
from model.network import ReIDOutput


@dataclass(frozen=True)
class LossWeights:
    identity: float = 1.0
    triplet: float = 1.0
    verification: float = 0.5
    uniformity: float = 0.1

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"loss weight {name} must be a finite number >= 0, got {value!r}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class ReIDCriterion(nn.Module):
    """Owns the verification classifier, so pass ``criterion.parameters()`` to the optimiser."""

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        weights: LossWeights | None = None,
        *,
        label_smoothing: float = 0.1,
        triplet_margin: float = 0.3,
        uniformity_form: str = "l1",
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.weights = weights or LossWeights()
        self.identity = LabelSmoothingCrossEntropy(label_smoothing)
        self.triplet = BatchHardTripletLoss(triplet_margin)
        self.verification = PairVerificationLoss(embedding_dim)
        self.uniformity = AttentionUniformityLoss(uniformity_form)

    def forward(
        self, output: ReIDOutput, pids: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and the unweighted value of each term (plus "total")."""
        if output.logits.shape[1] != self.num_classes:
            raise ValueError(
                f"network has {output.logits.shape[1]} classes, criterion {self.num_classes}"
            )
        zero = output.feature.sum() * 0.0
        terms = {
            "identity": lambda: self.identity(output.logits, pids),
            "triplet": lambda: self.triplet(output.feature, pids),
            "verification": lambda: self.verification(output.embedding, pids),
            "uniformity": lambda: (
                self.uniformity(output.spatial_attention, pids)
                if output.spatial_attention is not None
                else zero
            ),
        }
        total = zero
        values: dict[str, float] = {}
        for name, compute in terms.items():
            weight = getattr(self.weights, name)
            value = compute() if weight > 0 else zero
            total = total + weight * value
            values[name] = float(value.detach())
        values["total"] = float(total.detach())
        return total, values
