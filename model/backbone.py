"""torchvision ResNet trunks with a configurable last stride and offline weights.

Weights only ever come from a local file: a machine without internet (CI, the
service container) must behave exactly like a developer laptop, so torchvision
is always asked for ``weights=None``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from torchvision.models import ResNet, resnet18, resnet34, resnet50, resnet101

from model.state_dict import describe_mismatch

_BUILDERS: dict[str, Callable[..., ResNet]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
}


class PretrainedWeightsError(ValueError):
    """The local ImageNet weights file is unreadable or belongs to another network."""


class ResNetBackbone(nn.Module):
    """A ResNet without its pooling and classifier, split where attention plugs in."""

    def __init__(self, resnet: ResNet) -> None:
        super().__init__()
        self.conv1 = resnet.conv1
        self.bn1 = resnet.bn1
        self.relu = resnet.relu
        self.maxpool = resnet.maxpool
        self.layer1 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = resnet.layer3
        self.layer4 = resnet.layer4

    def forward_to_layer3(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.forward_to_layer3(x))


def build_backbone(
    arch: str, last_stride: int = 1, pretrained: Path | None = None
) -> ResNetBackbone:
    """Build the trunk; ``last_stride=1`` doubles layer4's map as in BoT (finer features)."""
    if arch not in _BUILDERS:
        raise ValueError(f"arch must be one of {', '.join(_BUILDERS)}; got {arch!r}")
    resnet = _BUILDERS[arch](weights=None)
    if pretrained is not None:
        load_imagenet_weights(resnet, Path(pretrained), arch)
    if last_stride == 1:
        _remove_last_stride(resnet)
    elif last_stride != 2:
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
    return ResNetBackbone(resnet)


def _remove_last_stride(resnet: ResNet) -> None:
    # The first block of layer4 downsamples in its strided conv and its shortcut;
    # both must change or the residual sum would not line up.
    for module in resnet.layer4[0].modules():
        if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
            module.stride = (1, 1)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file or a ``torch.save``d state_dict without unpickling code."""
    if not path.is_file():
        raise PretrainedWeightsError(f"pretrained weights file not found: {path}")
    expected_format = (
        "expected a torchvision state_dict saved with torch.save, or a .safetensors file"
    )
    if path.suffix == ".safetensors":
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise PretrainedWeightsError(
                f"cannot read pretrained weights {path}: {expected_format} ({error})"
            ) from error
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:  # weights_only refused an arbitrary object
            raise PretrainedWeightsError(
                f"refusing to load {path}: not a plain tensor state_dict ({_first_line(error)})"
            ) from error
        except Exception as error:  # on garbage the unpickler fails in arbitrary ways
            raise PretrainedWeightsError(
                f"cannot read pretrained weights {path}: {expected_format} "
                f"({type(error).__name__}: {_first_line(error)})"
            ) from error
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise PretrainedWeightsError(f"{path} does not hold a state_dict of named tensors")
    return dict(state)


def load_imagenet_weights(resnet: ResNet, path: Path, arch: str) -> None:
    """Load every trunk tensor strictly; the ImageNet ``fc`` is dropped, so it may be absent.

    torchvision's original ``IMAGENET1K_V1`` files predate BatchNorm's
    ``num_batches_tracked`` counters, which ``IMAGENET1K_V2`` files carry. The counter
    only matters for BatchNorm without momentum, which ResNets do not use, so it may be
    absent (it then stays at its initial value); every other tensor must be there.
    """
    state = _without_classifier(read_state_dict(path))
    expected = {
        key: value
        for key, value in _without_classifier(resnet.state_dict()).items()
        if key in state or not key.endswith(".num_batches_tracked")
    }
    mismatch = describe_mismatch(expected, state)
    if mismatch:
        raise PretrainedWeightsError(f"{path} is not a torchvision {arch} state_dict ({mismatch})")
    resnet.load_state_dict(state, strict=False)


def _without_classifier(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value for key, value in state.items() if not key.startswith("fc.")}


def _first_line(error: Exception) -> str:
    # torch's unpickling errors run to a page of advice; the first line is the fact.
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
