"""Spatial (encoder-decoder) and channel attention over the layer3 feature map.

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
    """Three stride-2 convs down, three transposed convs back up to the input size, sigmoid.

    The bottleneck sees a wide context (8x the receptive stride), which is what lets
    the mask follow the whole body rather than local texture.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        widths = (in_channels // 4, in_channels // 8, in_channels // 16)
        self.encoder = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1)
            for c_in, c_out in zip((in_channels, *widths[:-1]), widths, strict=True)
        )
        decoder_widths = (widths[1], widths[0], 1)
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, kernel_size=3, stride=2, padding=1)
            for c_in, c_out in zip((widths[-1], *decoder_widths[:-1]), decoder_widths, strict=True)
        )
        self.relu = nn.ReLU(inplace=True)
        _init_kaiming(self)
        nn.init.normal_(self.decoder[-1].weight, std=_FINAL_LAYER_STD)
        nn.init.zeros_(self.decoder[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sizes = []
        for conv in self.encoder:
            sizes.append(x.shape[-2:])
            x = self.relu(conv(x))
        # output_size picks the output padding so odd map sizes come back exactly.
        for index, (deconv, size) in enumerate(zip(self.decoder, reversed(sizes), strict=True)):
            x = deconv(x, output_size=list(size))
            if index < len(self.decoder) - 1:
                x = self.relu(x)
        return torch.sigmoid(x)


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
