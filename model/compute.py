"""How a device should run the network: one answer for training, evaluation and the service.

bf16 autocast over channels_last tensors is the fast path wherever bf16 is native: on CUDA
(tensor cores) and on CPUs whose oneDNN has AVX512-BF16 or AMX, where it roughly doubles
ResNet-18 throughput on 2 cores (docs/benchmarks.md). Elsewhere bf16 is emulated and slower
than fp32, so "auto" stays fp32 there. Whoever consumes the output re-normalises it in
float32, so cosine scores stay exact inner products whatever precision the forward used.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

SWITCHES = ("auto", "on", "off")


def has_fast_bf16(device: torch.device) -> bool:
    """Whether bf16 convolutions run natively on ``device``."""
    if device.type == "cuda":
        return True
    return torch.backends.mkldnn.is_available() and bool(
        torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


@dataclass(frozen=True)
class ComputeSettings:
    """The device, and whether the forward runs in bf16 autocast over channels_last tensors."""

    device: torch.device
    bf16: bool = False
    channels_last: bool = False

    @classmethod
    def resolve(
        cls, device: torch.device | str, bf16: str = "auto", channels_last: str = "auto"
    ) -> ComputeSettings:
        """Turn "auto"/"on"/"off" switches into settings; "auto" means on where bf16 is native
        (channels_last is the layout oneDNN's and cuDNN's bf16 kernels want)."""
        device = torch.device(device)
        for name, value in (("bf16", bf16), ("channels_last", channels_last)):
            if value not in SWITCHES:
                raise ValueError(f"{name} must be one of {SWITCHES}, got {value!r}")
        fast = has_fast_bf16(device)

        def switch(value: str) -> bool:
            return fast if value == "auto" else value == "on"

        return cls(device=device, bf16=switch(bf16), channels_last=switch(channels_last))

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def prepare(self, module: nn.Module) -> nn.Module:
        """Move ``module`` to the device, in the memory format its inputs will have."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def to_device(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images
