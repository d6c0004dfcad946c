"""The attentive re-identification network: ResNet, attention after layer3, BNNeck.

x -> stem, layer1..3 -> F -> attention(F) -> layer4 -> GAP -> feature
  -> BNNeck -> embedding (L2-normalised) and classifier -> logits
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from model.attention import DualAttention
from model.backbone import build_backbone
from model.config import ModelConfig
from model.heads import BNNeck, build_classifier


class ReIDOutput(NamedTuple):
    embedding: torch.Tensor  # (B, D) post-BNNeck, L2-normalised: what retrieval uses
    feature: torch.Tensor  # (B, D) pre-BNNeck pooled feature: what the triplet loss uses
    logits: torch.Tensor  # (B, num_classes)
    spatial_attention: torch.Tensor | None  # (B, 1, h, w) in [0, 1], h x w = layer3 map
    channel_attention: torch.Tensor | None  # (B, C, 1, 1) in [0, 1], C = layer3 channels


class ReIDNet(nn.Module):
    def __init__(self, config: ModelConfig, pretrained: Path | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.arch, config.last_stride, pretrained)
        self.attention = (
            DualAttention(
                config.attention_channels,
                spatial=config.uses_spatial_attention,
                channel=config.uses_channel_attention,
                reduction=config.channel_reduction,
                combination=config.attention_combination,
            )
            if config.attention != "none"
            else None
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.neck = BNNeck(config.embedding_dim)
        self.classifier = build_classifier(config.head, config.embedding_dim, config.num_classes)

    def _pooled(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        x = self.backbone.forward_to_layer3(x)
        spatial = channel = None
        if self.attention is not None:
            x, spatial, channel = self.attention(x)
        x = self.backbone.layer4(x)
        return self.pool(x).flatten(1), spatial, channel

    def forward(self, x: torch.Tensor) -> ReIDOutput:
        feature, spatial, channel = self._pooled(x)
        normalised = self.neck(feature)
        return ReIDOutput(
            embedding=F.normalize(normalised, dim=1),
            feature=feature,
            logits=self.classifier(normalised),
            spatial_attention=spatial,
            channel_attention=channel,
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The L2-normalised retrieval embedding only (no classifier work)."""
        feature, _, _ = self._pooled(x)
        return F.normalize(self.neck(feature), dim=1)


def build_model(config: ModelConfig, pretrained: Path | None = None) -> ReIDNet:
    """Build the network; ``pretrained`` is a local torchvision ImageNet state_dict file."""
    return ReIDNet(config, pretrained)
