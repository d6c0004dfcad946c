"""Batch-hard triplet loss (Hermans et al. 2017) on the pre-BNNeck feature.

For each anchor only its farthest positive and nearest negative in the batch
count: the easy triplets that dominate random sampling carry no signal.
"""

from __future__ import annotations

import torch
from torch import nn

from model.losses.pairs import identity_masks, pairwise_euclidean


class BatchHardTripletLoss(nn.Module):
    def __init__(self, margin: float = 0.3) -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = margin

    def mine(
        self, features: torch.Tensor, pids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per anchor: hardest positive distance, hardest negative distance, their indices.

        Distances are ``nan`` for anchors that lack a positive or a negative.
        """
        distances = pairwise_euclidean(features)
        positive, negative = identity_masks(pids)
        inf = torch.tensor(float("inf"), device=features.device, dtype=distances.dtype)
        hardest_positive, positive_index = torch.where(positive, distances, -inf).max(dim=1)
        hardest_negative, negative_index = torch.where(negative, distances, inf).min(dim=1)
        valid = positive.any(dim=1) & negative.any(dim=1)
        nan = torch.full_like(hardest_positive, float("nan"))
        return (
            torch.where(valid, hardest_positive, nan),
            torch.where(valid, hardest_negative, nan),
            positive_index,
            negative_index,
        )

    def forward(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        hardest_positive, hardest_negative, _, _ = self.mine(features, pids)
        valid = ~hardest_positive.isnan()
        if not bool(valid.any()):
            # No anchor has both a positive and a negative: nothing to learn, but keep
            # the graph so callers can still backward() through the total.
            return features.sum() * 0.0
        violation = hardest_positive[valid] - hardest_negative[valid] + self.margin
        return violation.clamp(min=0).mean()
