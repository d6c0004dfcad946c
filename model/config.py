"""The architecture description that travels with every checkpoint.

A frozen dataclass, validated on construction, so a model card read from disk
can never describe a network that ``build_model`` would build differently (or
not at all): a bad value fails here, naming the key, not deep inside torch.

This module owns the architecture's vocabulary: the trainer's flags and config
validation use these tuples and `ModelConfig` itself, so a new backbone or head
is added in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from model.preprocessing import DEFAULT_INPUT_SIZE, InputSize

# Output channels of layer3 (where attention sits) and layer4 (the embedding).
ARCH_CHANNELS: dict[str, tuple[int, int]] = {
    "resnet18": (256, 512),
    "resnet34": (256, 512),
    "resnet50": (1024, 2048),
    "resnet101": (1024, 2048),
}
ARCHS = tuple(ARCH_CHANNELS)
LAST_STRIDES = (1, 2)
ATTENTION_MODES = ("both", "spatial", "channel", "none")
HEADS = ("bnneck", "two_fc")
# Input sides: whole layer3 cells (stride 16), and at least 2 of them each way.
INPUT_SIDE_MULTIPLE = 16
MIN_INPUT_SIDE = 32
ATTENTION_COMBINATIONS = ("residual", "multiplicative")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network's parameter layout.

    ``attention_combination`` decides how the masks reweight layer3's map:
    "multiplicative" is ``F * A_ch * A_ed`` as in the paper, the default because it won
    the three-seed ablation in docs/ablation.md; "residual" is ``F * (1 + A_ch * A_ed)``,
    which keeps an identity path.
    """

    arch: str = "resnet50"
    last_stride: int = 1
    attention: str = "both"
    num_classes: int = 751
    channel_reduction: int = 16
    head: str = "bnneck"
    attention_combination: str = "multiplicative"
    input_height: int = DEFAULT_INPUT_SIZE.height
    input_width: int = DEFAULT_INPUT_SIZE.width

    def __post_init__(self) -> None:
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("attention", self.attention, ATTENTION_MODES)
        _check_choice("head", self.head, HEADS)
        _check_choice("attention_combination", self.attention_combination, ATTENTION_COMBINATIONS)
        _check_int("last_stride", self.last_stride)
        _check_choice("last_stride", self.last_stride, LAST_STRIDES)
        _check_int("num_classes", self.num_classes)
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        for key in ("input_height", "input_width"):
            value = getattr(self, key)
            _check_int(key, value)
            if value < MIN_INPUT_SIDE or value % INPUT_SIDE_MULTIPLE:
                raise ValueError(
                    f"{key} must be a multiple of {INPUT_SIDE_MULTIPLE} and at least "
                    f"{MIN_INPUT_SIDE}, got {value}"
                )
        _check_int("channel_reduction", self.channel_reduction)
        if not 1 <= self.channel_reduction <= self.attention_channels:
            raise ValueError(
                f"channel_reduction must be between 1 and {self.attention_channels} "
                f"for {self.arch}, got {self.channel_reduction}"
            )

    @property
    def attention_channels(self) -> int:
        """Channels of the layer3 map the attention modules see."""
        return ARCH_CHANNELS[self.arch][0]

    @property
    def input_size(self) -> InputSize:
        """The crop size every caller resizes to: training, evaluation, export, the service."""
        return InputSize(self.input_height, self.input_width)

    @property
    def embedding_dim(self) -> int:
        return ARCH_CHANNELS[self.arch][1]

    @property
    def uses_spatial_attention(self) -> bool:
        return self.attention in ("both", "spatial")

    @property
    def uses_channel_attention(self) -> bool:
        return self.attention in ("both", "channel")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from JSON-like data; missing keys take defaults, unknown keys are refused."""
        if not isinstance(data, dict):
            raise ValueError(f"model config must be a mapping, got {type(data).__name__}")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config key(s): {', '.join(map(str, unknown))}")
        return cls(**data)


def _check_choice(key: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        allowed = ", ".join(str(choice) for choice in choices)
        raise ValueError(f"{key} must be one of {allowed}; got {value!r}")


def _check_int(key: str, value: object) -> None:
    # bool is an int subclass; "true" as a stride is a bug, not a 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} must be an integer, got {value!r}")
