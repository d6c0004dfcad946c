"""Siamese pair verification: is this pair of embeddings one person or two?

A small binary classifier on the element-wise |f_i - f_j| and (f_i - f_j)^2
of every pair in the batch. It is an extra, pair-level supervision signal on
the embedding used for retrieval; the classifier's own parameters must be given
to the optimiser (they live in this module, not in the network).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.losses.pairs import identity_masks


class PairVerificationLoss(nn.Module):
    def __init__(self, embedding_dim: int) -> None:
        super().__init__()
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        self.classifier = nn.Linear(2 * embedding_dim, 1)
        nn.init.normal_(self.classifier.weight, std=1e-3)
        nn.init.zeros_(self.classifier.bias)

    def pair_logits(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Same-identity logit for each (first[k], second[k]); symmetric in the two."""
        difference = first - second
        return self.classifier(torch.cat([difference.abs(), difference.pow(2)], dim=1)).squeeze(1)

    def forward(self, embeddings: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        """Class-balanced BCE over all unordered pairs (a P x K batch has far more negatives)."""
        positive, negative = identity_masks(pids)
        upper = torch.ones_like(positive).triu(diagonal=1)
        first, second = torch.nonzero(upper & (positive | negative), as_tuple=True)
        if len(first) == 0:
            return embeddings.sum() * 0.0 + self.classifier.weight.sum() * 0.0
        logits = self.pair_logits(embeddings[first], embeddings[second])
        targets = positive[first, second].to(logits.dtype)
        losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        is_positive = targets.bool()
        terms = [losses[mask].mean() for mask in (is_positive, ~is_positive) if bool(mask.any())]
        return torch.stack(terms).mean()
