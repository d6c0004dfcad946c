"""BNNeck and the identity classifiers that sit on it.

The BNNeck (BoT) separates the two metric spaces: the triplet loss works on the
raw pooled feature, the classifier on the batch-normalised one, and retrieval
uses the normalised one too. Its bias is frozen so the normalised features stay
centred, which is what makes cosine distance on them work well.
"""

from __future__ import annotations

import torch
from torch import nn

from model.config import HEADS

# BoT's classifier init: tiny logits at the start, so the loss begins near log(K).
_CLASSIFIER_STD = 1e-3


class BNNeck(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.bn(feature)


class LinearClassifier(nn.Module):
    """BoT's head: one bias-free linear layer on the BNNeck feature."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.fc.weight, std=_CLASSIFIER_STD)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.fc(feature)


class TwoLayerClassifier(nn.Module):
    """The paper's head: FC -> BN -> ReLU -> FC, a little more capacity for the identity loss."""

    def __init__(self, dim: int, num_classes: int, hidden: int = 512) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, num_classes, bias=False)
        nn.init.kaiming_normal_(self.fc1.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.fc1.bias)
        nn.init.normal_(self.fc2.weight, std=_CLASSIFIER_STD)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.bn(self.fc1(feature))))


def build_classifier(head: str, dim: int, num_classes: int) -> nn.Module:
    if head == "bnneck":
        return LinearClassifier(dim, num_classes)
    if head == "two_fc":
        return TwoLayerClassifier(dim, num_classes)
    raise ValueError(f"head must be one of {', '.join(HEADS)}; got {head!r}")
