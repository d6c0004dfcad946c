"""Spatial and channel attention over the layer3 feature map.

The spatial branch learns a soft body mask A_ed (background suppression); the
channel branch learns which feature channels matter (A_ch). Both are sigmoids,
so each lies in [0, 1] and can be drawn as an overlay or compared across images
of one identity (the uniformity loss).
"""

from __future__ import annotations

import torch
from torch import nn

from model.config import ATTENTION_COMBINATIONS

# The mask starts near sigmoid(0) = 0.5: gradients flow, nothing is suppressed yet.
_FINAL_LAYER_STD = 1e-3


class SpatialAttention(nn.Module):
    """A body mask computed from what each place of layer3's map shows, not where it is.

    Every layer is a stride-1 convolution with replicate padding, so the mask at a cell
    depends on the features in the 7x7 cells around it and hardly on its position. The
    earlier encoder-decoder (three stride-2 convolutions down, three transposed ones up,
    zero padding) could encode *position* in its bottleneck: trained on Market-1501 it
    collapsed to one fixed grid of blobs, the same on every crop (correlation 0.998 with
    the dataset-mean mask), with the checkerboard marks of stride-2 transposed
    convolutions. The authors' own branch is also stride-1, unpadded; padding here keeps
    the map's size for any input size (an unpadded stack needs a map at least 6 wide).
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        reduced, hidden = in_channels // 4, in_channels // 8
        self.reduce = nn.Conv2d(in_channels, reduced, kernel_size=1)
        self.local = nn.Conv2d(reduced, hidden, kernel_size=3, padding=1, padding_mode="replicate")
        self.context = nn.Conv2d(
            hidden, hidden, kernel_size=3, padding=2, dilation=2, padding_mode="replicate"
        )
        self.score = nn.Conv2d(hidden, 1, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        _init_kaiming(self)
        nn.init.normal_(self.score.weight, std=_FINAL_LAYER_STD)
        nn.init.zeros_(self.score.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.reduce(x))
        x = self.relu(self.local(x))
        x = self.relu(self.context(x))
        return torch.sigmoid(self.score(x))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: GAP, C -> C/r -> C, sigmoid, one weight per channel."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(channels, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels)
        _init_kaiming(self)
        nn.init.normal_(self.fc2.weight, std=_FINAL_LAYER_STD)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc2(self.relu(self.fc1(self.pool(x).flatten(1))))
        return torch.sigmoid(weights)[:, :, None, None]


class DualAttention(nn.Module):
    """Reweights a feature map with whichever of the two masks are enabled.

    "residual": ``F * (1 + A)``; "multiplicative": ``F * A``; where
    ``A = A_ch * A_ed`` over the enabled masks. Residual keeps an identity path,
    so a fresh mask (~0.5 everywhere) cannot halve the signal reaching layer4.
    """

    def __init__(
        self,
        channels: int,
        *,
        spatial: bool = True,
        channel: bool = True,
        reduction: int = 16,
        combination: str = "multiplicative",
    ) -> None:
        super().__init__()
        if not (spatial or channel):
            raise ValueError("DualAttention needs at least one of spatial or channel")
        if combination not in ATTENTION_COMBINATIONS:
            raise ValueError(
                f"combination must be one of {', '.join(ATTENTION_COMBINATIONS)}; "
                f"got {combination!r}"
            )
        self.spatial = SpatialAttention(channels) if spatial else None
        self.channel = ChannelAttention(channels, reduction) if channel else None
        self.combination = combination

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        spatial = self.spatial(x) if self.spatial is not None else None
        channel = self.channel(x) if self.channel is not None else None
        masks = [mask for mask in (spatial, channel) if mask is not None]
        mask = masks[0] if len(masks) == 1 else masks[0] * masks[1]
        out = x * (1 + mask) if self.combination == "residual" else x * mask
        return out, spatial, channel


def _init_kaiming(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
