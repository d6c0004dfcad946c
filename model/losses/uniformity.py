"""Attention uniformity: one person's body mask should look alike in every image.

Two crops of one identity show the same body, so their spatial masks should
agree; penalising their L1 distance keeps the mask on the person instead of on
camera-specific background.
"""

from __future__ import annotations

import torch
from torch import nn

from model.losses.pairs import identity_masks


class AttentionUniformityLoss(nn.Module):
    def forward(self, attention: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        """Mean per-pixel L1 distance over all same-identity pairs; 0 if there are none."""
        maps = attention.flatten(1)
        positive, _ = identity_masks(pids)
        if not bool(positive.any()):
            return maps.sum() * 0.0
        distances = (maps[:, None, :] - maps[None, :, :]).abs().mean(dim=2)
        return distances[positive].mean()
