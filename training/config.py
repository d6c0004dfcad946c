"""One validated description of a training run, assembled from preset, file and flags.

Every knob lives in `TrainConfig` so a run is reproducible from its recorded
config alone. Values are layered: dataclass defaults, then a named preset
(``training/presets/NAME.toml``), then an optional ``--config FILE.toml``, then
command-line flags. Every layer goes through the same validation, which raises
`ConfigError` naming the offending key; the CLI turns that into a usage error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.compute import SWITCHES
from model.config import ModelConfig
from model.evaluation.layouts.catalogue import LAYOUT_NAMES
from model.losses.uniformity import UNIFORMITY_FORMS

# ModelConfig's fields that a run sets; the class count is not one, the dataset decides it.
MODEL_FIELDS: tuple[str, ...] = tuple(
    item.name for item in dataclasses.fields(ModelConfig) if item.name != "num_classes"
)
# Field metadata for what a resumed run must keep: what the saved optimiser state and
# batch plan mean (optimiser, batch shape, data, seed). Model fields are always locked.
LOCKED_ON_RESUME: Mapping[str, str] = {"resume": "locked"}
OPTIMIZERS = ("sgd", "adam")
LAYOUTS = LAYOUT_NAMES
DEVICES = ("auto", "cpu", "cuda")
LOSS_TERMS = ("identity", "triplet", "verification", "uniformity")


class ConfigError(ValueError):
    """A preset, config file or flag value is unknown or out of range."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (paths, model, recipe, runtime).

    The model fields are `ModelConfig`'s own, by the same names and defaults, so
    presets, flags and the recorded ``config.json`` stay one flat table;
    `model_config` derives the network's description from them and is also what
    validates them, so the architecture's rules live only in ``model/config.py``.
    """

    # Data: one or more dataset roots, trained on jointly; one layout for all or one per root.
    data_dir: tuple[Path, ...] = field(default=(), metadata=LOCKED_ON_RESUME)
    layout: tuple[str, ...] = field(default=("market",), metadata=LOCKED_ON_RESUME)
    synthetic: bool = False
    synthetic_train_ids: int = 32
    synthetic_test_ids: int = 16
    synthetic_cameras: int = 4
    synthetic_images_per_id_per_camera: int = 2
    eval_dir: Path | None = None  # Market-1501 folder whose query/gallery to evaluate on
    # Share of the training identities held out (not trained on) to calibrate the open-set
    # thresholds written into the model cards; 0 disables. It changes the training data.
    calibration_fraction: float = field(default=0.1, metadata=LOCKED_ON_RESUME)
    output_dir: Path | None = None
    # Model: every field in MODEL_FIELDS.
    arch: str = ModelConfig.arch
    last_stride: int = ModelConfig.last_stride
    attention: str = ModelConfig.attention
    head: str = ModelConfig.head
    attention_combination: str = ModelConfig.attention_combination
    channel_reduction: int = ModelConfig.channel_reduction
    input_height: int = ModelConfig.input_height
    input_width: int = ModelConfig.input_width
    pretrained: Path | None = None
    # Recipe.
    epochs: int = 90
    batch_p: int = field(default=16, metadata=LOCKED_ON_RESUME)
    batch_k: int = field(default=4, metadata=LOCKED_ON_RESUME)
    optimizer: str = field(default="sgd", metadata=LOCKED_ON_RESUME)
    lr: float = 0.04
    momentum: float = 0.9
    # lr multiplier for all but the classifiers (the seed paper's code: 0.1; see optim.py)
    backbone_lr_factor: float = field(default=1.0, metadata=LOCKED_ON_RESUME)
    weight_decay: float = 5e-4
    warmup_epochs: int = 10
    warmup_start_factor: float = 0.01
    lr_milestones: tuple[int, ...] = (30, 60)
    lr_gamma: float = 0.1
    loss_weights: Mapping[str, float] = field(
        default_factory=lambda: {
            "identity": 1.0,
            "triplet": 1.0,
            "verification": 0.5,
            "uniformity": 0.1,
        }
    )
    label_smoothing: float = 0.1
    triplet_margin: float = 0.3
    uniformity_form: str = "l1"  # "hinge": the authors' reading (model/losses/uniformity.py)
    random_erasing: float = 0.5
    # Decode and resize every crop once and keep it in memory (training/data/decoded.py):
    # the fast path on a CPU host; about 100 KB per crop at 256x128, 25 KB at 128x64.
    decode_once: bool = False
    # Runtime.
    device: str = "auto"
    amp: str = "auto"  # bf16 autocast: "auto" = on CUDA and on CPUs with native bf16
    channels_last: str = "auto"  # NHWC memory format: "auto" follows amp
    workers: int = 4
    eval_every: int = 10
    eval_flip: bool = False
    eval_before_training: bool = False
    seed: int = field(default=0, metadata=LOCKED_ON_RESUME)
    resume: bool = False
    progress: bool = True
    plots: bool = True
    plot_queries: int = 6

    def __post_init__(self) -> None:
        try:
            # Any valid class count will do: this only checks the architecture fields.
            self.model_config(num_classes=1)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        for name, single in (("data_dir", str | Path), ("layout", str)):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, single) else tuple(value))
        object.__setattr__(self, "data_dir", tuple(Path(p) for p in self.data_dir))
        self._check_datasets()
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("uniformity_form", self.uniformity_form, UNIFORMITY_FORMS)
        _check_choice("device", self.device, DEVICES)
        _check_choice("amp", self.amp, SWITCHES)
        _check_choice("channels_last", self.channels_last, SWITCHES)
        for name in (
            "epochs",
            "batch_p",
            "batch_k",
            "eval_every",
            "synthetic_train_ids",
            "synthetic_test_ids",
            "synthetic_cameras",
            "synthetic_images_per_id_per_camera",
        ):
            _check_at_least(name, getattr(self, name), 1)
        _check_at_least("batch_p", self.batch_p, 2)  # batch-hard mining needs negatives
        for name in ("warmup_epochs", "workers", "seed", "plot_queries"):
            _check_at_least(name, getattr(self, name), 0)
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0.0 < self.backbone_lr_factor <= 1.0:
            raise ConfigError(
                f"backbone_lr_factor must be in (0, 1], got {self.backbone_lr_factor}"
            )
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if not 0.0 <= self.weight_decay < 1.0:
            raise ConfigError(f"weight_decay must be in [0, 1), got {self.weight_decay}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not self.triplet_margin > 0:
            raise ConfigError(f"triplet_margin must be > 0, got {self.triplet_margin}")
        if not 0.0 <= self.calibration_fraction < 1.0:
            raise ConfigError(
                f"calibration_fraction must be in [0, 1), got {self.calibration_fraction}"
            )
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ConfigError(f"random_erasing must be in [0, 1], got {self.random_erasing}")
        if not 0.0 < self.warmup_start_factor <= 1.0:
            raise ConfigError(
                f"warmup_start_factor must be in (0, 1], got {self.warmup_start_factor}"
            )
        if not 0.0 < self.lr_gamma <= 1.0:
            raise ConfigError(f"lr_gamma must be in (0, 1], got {self.lr_gamma}")
        milestones = tuple(self.lr_milestones)
        if any(m < 1 for m in milestones) or list(milestones) != sorted(set(milestones)):
            raise ConfigError(
                f"lr_milestones must be increasing positive epochs, got {list(milestones)}"
            )
        object.__setattr__(self, "lr_milestones", milestones)
        unknown = set(self.loss_weights) - set(LOSS_TERMS)
        if unknown:
            raise ConfigError(
                f"unknown loss term(s) {sorted(unknown)}; expected {', '.join(LOSS_TERMS)}"
            )
        weights = {term: float(self.loss_weights.get(term, 0.0)) for term in LOSS_TERMS}
        for term, value in weights.items():
            if value < 0:
                raise ConfigError(f"loss weight {term} must be >= 0, got {value}")
        if weights["identity"] == weights["triplet"] == weights["verification"] == 0:
            raise ConfigError("at least one of identity/triplet/verification must be weighted")
        object.__setattr__(self, "loss_weights", weights)
        for name in ("eval_dir", "output_dir", "pretrained"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))

    def _check_datasets(self) -> None:
        if not self.layout:
            raise ConfigError("layout must name at least one layout")
        for layout in self.layout:
            _check_choice("layout", layout, LAYOUTS)
        if self.data_dir and len(self.layout) not in (1, len(self.data_dir)):
            raise ConfigError(
                f"give one layout for all data_dir folders or one per folder, in the same "
                f"order; got {len(self.layout)} layouts for {len(self.data_dir)} folders"
            )
        repeated = sorted({str(p) for p in self.data_dir if self.data_dir.count(p) > 1})
        if repeated:
            raise ConfigError(f"data_dir names {', '.join(repeated)} more than once")
        if self.synthetic and (self.layout != ("market",) or len(self.data_dir) > 1):
            raise ConfigError(
                "synthetic data is one generated folder in the market layout; "
                "drop layout and extra data_dir folders"
            )

    def datasets(self) -> list[tuple[str, Path]]:
        """``(layout, root)`` of every dataset to train on, in the order given."""
        layouts = self.layout * len(self.data_dir) if len(self.layout) == 1 else self.layout
        return list(zip(layouts, self.data_dir, strict=True))

    @property
    def batch_size(self) -> int:
        return self.batch_p * self.batch_k

    def model_config(self, num_classes: int) -> ModelConfig:
        """The network this run trains, classifying the dataset's ``num_classes`` identities."""
        return ModelConfig(
            **{name: getattr(self, name) for name in MODEL_FIELDS}, num_classes=num_classes
        )

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed, validated like any other layer."""
        return from_mapping(changes, base=self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as recorded in the run directory and model card."""
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = [str(item) if isinstance(item, Path) else item for item in value]
            elif isinstance(value, Mapping):
                value = dict(value)
            out[item.name] = value
        return out


def resume_locked_fields() -> tuple[str, ...]:
    """Fields a resumed run must share with its saved state.

    Derived from the dataclass rather than listed by name, so renaming a field
    cannot silently unlock it: every model field (they fix the parameter layout
    the saved weights have) plus those marked `LOCKED_ON_RESUME`.
    """
    return tuple(
        item.name
        for item in dataclasses.fields(TrainConfig)
        if item.name in MODEL_FIELDS or item.metadata.get("resume") == LOCKED_ON_RESUME["resume"]
    )


def _check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        allowed = ", ".join(str(c) for c in choices)
        raise ConfigError(f"{name} must be one of {allowed}; got {value!r}")


def _check_at_least(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


_FIELD_TYPES: dict[str, Any] = {f.name: f.type for f in dataclasses.fields(TrainConfig)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_folder_name(value: Any) -> bool:
    return isinstance(value, str | Path) and str(value) != ""


def _coerce(name: str, value: Any) -> Any:
    """Type-check one value from a TOML file or flag against its field."""
    kind = _FIELD_TYPES[name]
    if kind == "Path | None" and (value is None or isinstance(value, str | Path)):
        return None if value in (None, "") else Path(value)
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and _is_int(value):
        return value
    if kind == "float" and _is_number(value):
        return float(value)
    if kind == "tuple[int, ...]" and isinstance(value, list | tuple) and all(map(_is_int, value)):
        return tuple(value)
    # One folder or layout may be written as a plain string (as before joint training).
    if kind in ("tuple[Path, ...]", "tuple[str, ...]") and isinstance(value, str | Path):
        value = [value]
    sequence = isinstance(value, list | tuple)
    if kind == "tuple[Path, ...]" and sequence and all(_is_folder_name(v) for v in value):
        return tuple(Path(item) for item in value)
    if kind == "tuple[str, ...]" and sequence and all(isinstance(v, str) for v in value):
        return tuple(value)
    if (
        kind == "Mapping[str, float]"
        and isinstance(value, Mapping)
        and all(map(_is_number, value.values()))
    ):
        return {str(k): float(v) for k, v in value.items()}
    raise ConfigError(f"{name} has the wrong type: {value!r} (expected {kind})")


def from_mapping(values: Mapping[str, Any], *, base: TrainConfig | None = None) -> TrainConfig:
    """Layer `values` over `base` (or the defaults); unknown keys are an error."""
    base = base or TrainConfig()
    unknown = sorted(set(values) - set(_FIELD_TYPES))
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
    changes = {name: _coerce(name, value) for name, value in values.items()}
    if "loss_weights" in changes:
        # A partial table overrides only the terms it names.
        changes["loss_weights"] = {**base.loss_weights, **changes["loss_weights"]}
    try:
        return dataclasses.replace(base, **changes)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from error
