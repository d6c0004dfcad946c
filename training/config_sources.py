"""Where a run's settings come from: shipped presets, a TOML file, the flags' text.

`TrainConfig` validates; this module only finds and parses the layers and applies them
in order (defaults, preset, config file, flags), so every layer goes through the same
checks and a bad value names its key whichever layer it came from.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from training.config import LOSS_TERMS, ConfigError, TrainConfig, from_mapping


def preset_names() -> list[str]:
    """Names of the presets shipped in training/presets/."""
    folder = resources.files("training") / "presets"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_preset(name: str) -> dict[str, Any]:
    """The raw key/value table of a shipped preset."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(preset_names())}")
    text = (resources.files("training") / "presets" / f"{name}.toml").read_text(encoding="utf-8")
    return _parse_toml(text, f"preset {name}")


def load_config_file(path: Path) -> dict[str, Any]:
    """The raw key/value table of a user TOML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from error
    return _parse_toml(text, str(path))


def _parse_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{origin} is not valid TOML: {error}") from error


def parse_loss_weights(text: str) -> dict[str, float]:
    """Parse ``id=1,triplet=1,verification=0.5,uniformity=0.1`` (``id`` = identity)."""
    aliases = {"id": "identity", "tri": "triplet", "verif": "verification", "uni": "uniformity"}
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = aliases.get(name.strip(), name.strip())
        if not sep or name not in LOSS_TERMS:
            raise ConfigError(
                f"bad loss weight {part!r}; expected TERM=VALUE with TERM in "
                f"{', '.join(LOSS_TERMS)} (or id)"
            )
        try:
            weights[name] = float(value)
        except ValueError as error:
            raise ConfigError(f"loss weight {name} is not a number: {value!r}") from error
    if not weights:
        raise ConfigError("empty --loss-weights")
    return weights


def build_config(
    *,
    preset: str | None,
    config_file: Path | None,
    overrides: Mapping[str, Any],
) -> TrainConfig:
    """Apply the layers in order: defaults, preset, config file, flags."""
    config = TrainConfig()
    if preset is not None:
        config = from_mapping(load_preset(preset), base=config)
    if config_file is not None:
        config = from_mapping(load_config_file(config_file), base=config)
    return from_mapping(overrides, base=config)
