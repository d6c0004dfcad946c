"""Checkpoints as a directory of ``model.safetensors`` + ``model_card.json``.

Loading never unpickles: a checkpoint is data (tensors + JSON), so a file from
an untrusted place cannot run code in the service. The version is a hash of the
weights' bytes, so two services reporting one version serve the same network,
and a card that was paired with other weights is caught at load time.

The card may carry an open-set `Calibration` (decision thresholds). It is metadata
*about* the embedding space, not part of it: re-calibrating rewrites only the card
(`write_model_card`), and the version, a hash of the weights alone, stays the same, so
a gallery embedded with the model stays valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from model.config import ModelConfig
from model.evaluation.calibration import Calibration, CalibrationError
from model.network import ReIDNet, build_model
from model.state_dict import describe_mismatch

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"
_VERSION_HEX_CHARS = 16
_UNTRAINED_PREFIX = "untrained-"
# Signatures of files people rename by mistake: torch.save zips and raw pickles.
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL_OPCODE = 0x80


class CheckpointError(ValueError):
    """The checkpoint is missing, damaged, foreign, or does not match its card."""


@dataclass
class ModelCard:
    """What a checkpoint is: architecture, provenance, quality, identity.

    ``input_size`` is (channels, height, width) of one preprocessed crop, from the config;
    the card states it so a reader need not know the config's defaults. ``calibration``
    is None for a card written before open-set calibration existed, or never calibrated.
    """

    config: ModelConfig
    embedding_dim: int
    training_data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    trained: bool = True
    created_at: str = ""
    calibration: Calibration | None = None

    @property
    def input_size(self) -> tuple[int, int, int]:
        return (3, *self.config.input_size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "embedding_dim": self.embedding_dim,
            "input_size": list(self.input_size),
            "training_data": self.training_data,
            "metrics": self.metrics,
            "version": self.version,
            "trained": self.trained,
            "created_at": self.created_at,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ModelCard:
        """Validate JSON data; every problem is a ``CheckpointError`` naming the key."""
        if not isinstance(data, dict):
            raise CheckpointError(f"model card must be a JSON object, got {type(data).__name__}")
        required = ("config", "embedding_dim", "input_size", "version", "trained", "created_at")
        missing = [key for key in required if key not in data]
        if missing:
            raise CheckpointError(f"model card is missing key(s): {', '.join(missing)}")
        try:
            config = ModelConfig.from_dict(data["config"])
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"model card 'config' is invalid: {error}") from error
        if data["embedding_dim"] != config.embedding_dim:
            raise CheckpointError(
                f"model card 'embedding_dim' is {data['embedding_dim']!r} but {config.arch} "
                f"produces {config.embedding_dim}"
            )
        input_size = data["input_size"]
        if not (
            isinstance(input_size, list)
            and len(input_size) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_size)
        ):
            raise CheckpointError(
                f"model card 'input_size' must be [channels, height, width], got {input_size!r}"
            )
        if tuple(input_size) != (3, *config.input_size):
            raise CheckpointError(
                f"model card 'input_size' is {input_size!r} but its config says "
                f"{[3, *config.input_size]!r}"
            )
        for key, kind in (("training_data", dict), ("metrics", dict)):
            if not isinstance(data.get(key, {}), kind):
                raise CheckpointError(f"model card '{key}' must be a JSON object")
        for key, kind in (("version", str), ("trained", bool), ("created_at", str)):
            if not isinstance(data[key], kind):
                raise CheckpointError(f"model card '{key}' must be a {kind.__name__}")
        calibration = None
        if data.get("calibration") is not None:
            try:
                calibration = Calibration.from_dict(data["calibration"])
            except CalibrationError as error:
                raise CheckpointError(f"model card 'calibration' is invalid: {error}") from error
        return cls(
            config=config,
            embedding_dim=config.embedding_dim,
            training_data=data.get("training_data", {}),
            metrics=data.get("metrics", {}),
            version=data["version"],
            trained=data["trained"],
            created_at=data["created_at"],
            calibration=calibration,
        )


def weights_version(weights: bytes) -> str:
    return hashlib.sha256(weights).hexdigest()[:_VERSION_HEX_CHARS]


def _serialise_weights(network: ReIDNet) -> bytes:
    state = {key: value.detach().cpu().contiguous() for key, value in network.state_dict().items()}
    return save_safetensors(state, metadata={"format": "reid"})


def save_checkpoint(
    network: ReIDNet,
    directory: Path,
    *,
    training_data: dict[str, Any],
    metrics: dict[str, Any],
    trained: bool = True,
    calibration: Calibration | None = None,
) -> ModelCard:
    """Write the checkpoint directory, replacing any previous one whole.

    Both files are written into a sibling temporary directory that is then
    renamed into place, so a crash leaves the old checkpoint or the new one,
    never new weights beside an old card.
    """
    directory = Path(directory)
    weights = _serialise_weights(network)
    card = ModelCard(
        config=network.config,
        embedding_dim=network.config.embedding_dim,
        training_data=training_data,
        metrics=metrics,
        version=weights_version(weights),
        trained=trained,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        calibration=calibration,
    )
    card_text = _card_text(card)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        _write_synced(staging / WEIGHTS_FILE, weights)
        _write_synced(staging / CARD_FILE, card_text.encode())
        _swap_into_place(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def write_model_card(path: Path, card: ModelCard) -> None:
    """Replace a checkpoint's card, leaving its weights untouched (e.g. to add a calibration).

    The card must describe the weights already there (same version); it is written to a
    sibling file and renamed over the old one, so a reader sees the old card or the new.
    """
    directory = _checkpoint_directory(Path(path))
    actual = weights_version((directory / WEIGHTS_FILE).read_bytes())
    if card.version != actual:
        raise CheckpointError(
            f"the new card describes weights version {card.version} but {directory} holds "
            f"version {actual}"
        )
    partial = directory / (CARD_FILE + ".partial")
    _write_synced(partial, _card_text(card).encode())
    partial.replace(directory / CARD_FILE)


def _card_text(card: ModelCard) -> str:
    return json.dumps(card.to_dict(), indent=2, allow_nan=True, default=_json_default)


def _json_default(value: Any) -> Any:
    # Metrics often arrive as numpy/torch scalars, provenance as paths.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _swap_into_place(staging: Path, directory: Path) -> None:
    if directory.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
        retired.rmdir()
        directory.rename(retired)
        staging.rename(directory)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(directory)


def load_checkpoint(
    path: Path, map_location: str | torch.device = "cpu"
) -> tuple[ReIDNet, ModelCard]:
    """Load a checkpoint directory (or its ``model.safetensors``) into an eval-mode network."""
    directory = _checkpoint_directory(Path(path))
    card = read_model_card(directory)
    try:
        weights = (directory / WEIGHTS_FILE).read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read {directory / WEIGHTS_FILE}: {error}") from error
    state = _parse_weights(weights, directory / WEIGHTS_FILE)
    actual_version = weights_version(weights)
    if card.version != actual_version:
        raise CheckpointError(
            f"{directory / CARD_FILE} describes weights version {card.version} but "
            f"{WEIGHTS_FILE} has version {actual_version}: card and weights do not belong together"
        )
    network = build_model(card.config)
    _check_state_matches(network, state, card)
    network.load_state_dict(state)
    return network.to(map_location).eval(), card


def read_model_card(path: Path) -> ModelCard:
    """Read just the card (cheap: no tensors), e.g. to list available checkpoints."""
    directory = _checkpoint_directory(Path(path))
    card_path = directory / CARD_FILE
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{card_path} is not valid JSON: {error}") from error
    except OSError as error:
        raise CheckpointError(f"cannot read {card_path}: {error}") from error
    return ModelCard.from_dict(data)


def _checkpoint_directory(path: Path) -> Path:
    if path.name == WEIGHTS_FILE and path.is_file():
        path = path.parent
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_dir():
        raise CheckpointError(
            f"{path} is not a checkpoint: expected a directory holding {WEIGHTS_FILE} and "
            f"{CARD_FILE} (or the path of its {WEIGHTS_FILE})"
        )
    missing = [name for name in (WEIGHTS_FILE, CARD_FILE) if not (path / name).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {path} is missing {' and '.join(missing)}")
    return path


def _parse_weights(weights: bytes, path: Path) -> dict[str, torch.Tensor]:
    if weights.startswith(_ZIP_MAGIC) or weights[:1] == bytes([_PICKLE_PROTOCOL_OPCODE]):
        raise CheckpointError(
            f"{path} looks like a torch.save pickle, not safetensors; pickles are never "
            "loaded (they can run code). Convert it with safetensors.torch.save_file."
        )
    try:
        return load_safetensors(weights)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{path} is not a complete safetensors file (truncated or foreign): {error}"
        ) from error


def _check_state_matches(network: ReIDNet, state: dict[str, torch.Tensor], card: ModelCard) -> None:
    mismatch = describe_mismatch(network.state_dict(), state)
    if mismatch:
        raise CheckpointError(
            f"weights do not fit the architecture in the model card "
            f"({card.config.to_dict()}): {mismatch}"
        )
    non_finite = [
        key
        for key, value in state.items()
        if value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    if non_finite:
        raise CheckpointError(f"weights contain NaN or infinity in: {', '.join(non_finite[:5])}")


def untrained_model(config: ModelConfig | None = None, seed: int = 0) -> tuple[ReIDNet, ModelCard]:
    """A deterministically initialised network for a service started without a checkpoint.

    Its embeddings are meaningless for retrieval but stable across restarts, so
    a gallery enrolled with it stays consistent; ``trained=False`` lets callers warn.
    """
    config = config or ModelConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build_model(config)
    card = ModelCard(
        config=config,
        embedding_dim=config.embedding_dim,
        training_data={"seed": seed},
        metrics={},
        version=_UNTRAINED_PREFIX + weights_version(_serialise_weights(network)),
        trained=False,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return network.eval(), card
