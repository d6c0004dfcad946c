"""Attention uniformity: one person's body mask should look alike in every image.

Two crops of one identity show the same body, so their spatial masks should
agree. Two readings of the seed paper exist, and both are offered:

* ``"l1"`` (the paper's text): the mean L1 distance between same-identity
  masks. A mask that is the same on every image minimises it trivially, which
  is how attention can collapse to a fixed spatial weighting.
* ``"hinge"`` (the authors' code, made differentiable): per anchor,
  ``max(L1(a, p) - L1(a, n) + margin, 0)`` with its hardest positive and
  hardest negative mask. A constant mask gives ``margin``, not 0, so it is
  penalised: masks must also tell identities apart. The authors' version
  computes it on ``.data``, so it passes no gradient; this one does.
"""

from __future__ import annotations

import torch
from torch import nn

from model.losses.pairs import identity_masks

UNIFORMITY_FORMS = ("l1", "hinge")
DEFAULT_HINGE_MARGIN = 0.3


class AttentionUniformityLoss(nn.Module):
    def __init__(self, form: str = "l1", margin: float = DEFAULT_HINGE_MARGIN) -> None:
        super().__init__()
        if form not in UNIFORMITY_FORMS:
            raise ValueError(f"uniformity form must be one of {UNIFORMITY_FORMS}, got {form!r}")
        if not margin > 0:
            raise ValueError(f"uniformity margin must be > 0, got {margin}")
        self.form = form
        self.margin = margin

    def forward(self, attention: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        """The loss over the batch; 0 when there is no pair (or triplet) to compare."""
        maps = attention.flatten(1)
        positive, negative = identity_masks(pids)
        if not bool(positive.any()):
            return maps.sum() * 0.0
        distances = (maps[:, None, :] - maps[None, :, :]).abs().mean(dim=2)
        if self.form == "l1":
            return distances[positive].mean()
        anchors = positive.any(dim=1) & negative.any(dim=1)
        if not bool(anchors.any()):
            return maps.sum() * 0.0
        hardest_positive = distances.masked_fill(~positive, float("-inf")).amax(dim=1)
        hardest_negative = distances.masked_fill(~negative, float("inf")).amin(dim=1)
        hinge = (hardest_positive - hardest_negative + self.margin).clamp(min=0)
        return hinge[anchors].mean()
