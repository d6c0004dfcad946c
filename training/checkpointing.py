"""Resume state: everything besides the published model needed to continue a run.

Stored without pickle, like the model checkpoints: every tensor (network and
criterion weights, optimiser buffers, torch RNG states) goes into one
safetensors file and everything else (epoch, best mAP, optimiser
hyper-parameters, schedule history, Python/NumPy RNG) into JSON. Loading a
state therefore can never execute code, and a run directory copied from an
untrusted place is safe to ``--resume``.

The state lives in ``OUTPUT/resume/`` and is replaced as a whole directory, so a
crash while saving leaves the previous state intact rather than half of each.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

STATE_FORMAT = "reid-trainer-state"
STATE_VERSION = 1
TENSORS_FILE = "trainer_state.safetensors"
JSON_FILE = "trainer_state.json"
# Key prefix of the network's tensors in TENSORS_FILE. Part of the on-disk format, so it
# stays "model." and states written by earlier versions keep loading.
_NETWORK_PREFIX = "model."


class ResumeError(ValueError):
    """The resume state is missing, damaged or belongs to a different run setup."""


@dataclass
class Progress:
    """Where the run stands: the scalar part of the resume state."""

    epoch: int  # epochs completed
    global_step: int
    best_map: float
    best_epoch: int
    # The lr recipe of each start and each --resume that changed it, from which epoch on,
    # so a card of a resumed run says how it was really trained.
    schedule_history: list[dict[str, Any]] = field(default_factory=list)


def save_resume_state(
    directory: Path,
    *,
    network: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    config: dict[str, Any],
) -> None:
    """Write the full state to ``directory`` (replaced atomically as a whole)."""
    tensors: dict[str, torch.Tensor] = {}
    tensors.update(_prefixed(_NETWORK_PREFIX, network.state_dict()))
    tensors.update(_prefixed("criterion.", criterion.state_dict()))
    optimizer_json = _flatten_optimizer(optimizer.state_dict(), tensors)
    rng_json = _capture_rng(tensors)
    document = {
        "format": STATE_FORMAT,
        "format_version": STATE_VERSION,
        "progress": progress.__dict__,
        "config": config,
        "optimizer": optimizer_json,
        "rng": rng_json,
    }
    directory = Path(directory)
    staging = directory.with_name(directory.name + ".tmp")
    previous = directory.with_name(directory.name + ".old")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(
        {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()},
        str(staging / TENSORS_FILE),
    )
    (staging / JSON_FILE).write_text(json.dumps(document, indent=1), encoding="utf-8")
    shutil.rmtree(previous, ignore_errors=True)
    if directory.exists():
        directory.rename(previous)
    staging.rename(directory)
    shutil.rmtree(previous, ignore_errors=True)


def has_resume_state(directory: Path) -> bool:
    return (Path(directory) / JSON_FILE).is_file() or (
        Path(directory).with_name(Path(directory).name + ".old") / JSON_FILE
    ).is_file()


def read_resume_config(directory: Path) -> dict[str, Any]:
    """The run config recorded with the state (to check a resume is compatible)."""
    return _read_json(_locate(directory))["config"]


def load_resume_state(
    directory: Path,
    *,
    network: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
) -> Progress:
    """Restore every object in place from ``directory``; returns the run progress."""
    directory = _locate(directory)
    document = _read_json(directory)
    try:
        tensors = load_file(str(directory / TENSORS_FILE))
    except (OSError, SafetensorError) as error:
        raise ResumeError(f"cannot read {directory / TENSORS_FILE}: {error}") from error
    try:
        network.load_state_dict(_unprefixed(_NETWORK_PREFIX, tensors))
        criterion.load_state_dict(_unprefixed("criterion.", tensors))
        optimizer.load_state_dict(_unflatten_optimizer(document["optimizer"], tensors))
        # States written before the schedule was anchored to epochs carry a "scheduler"
        # entry; the position it counted is the epoch, so it is not needed.
        _restore_rng(document["rng"], tensors)
        return Progress(**document["progress"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ResumeError(
            f"resume state in {directory} does not fit this run "
            f"(different network or optimiser?): {error}"
        ) from error


def _locate(directory: Path) -> Path:
    """The state directory, falling back to the copy kept during an interrupted save."""
    directory = Path(directory)
    if (directory / JSON_FILE).is_file():
        return directory
    previous = directory.with_name(directory.name + ".old")
    if (previous / JSON_FILE).is_file():
        return previous
    raise ResumeError(
        f"no resume state in {directory} (expected {JSON_FILE} and {TENSORS_FILE}); "
        "run once without --resume first"
    )


def _read_json(directory: Path) -> dict[str, Any]:
    try:
        document = json.loads((directory / JSON_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResumeError(f"cannot read {directory / JSON_FILE}: {error}") from error
    if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
        raise ResumeError(f"{directory / JSON_FILE} is not a {STATE_FORMAT} file")
    if document.get("format_version") != STATE_VERSION:
        raise ResumeError(
            f"{directory / JSON_FILE} has format version {document.get('format_version')}, "
            f"this trainer reads version {STATE_VERSION}"
        )
    return document


def _prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + key: value for key, value in state.items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _flatten_optimizer(state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Split an optimiser state dict into tensors (added to ``tensors``) and JSON."""
    scalars: dict[str, dict[str, Any]] = {}
    for index, buffers in state["state"].items():
        kept: dict[str, Any] = {}
        for name, value in buffers.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.state.{index}.{name}"] = value
            else:
                kept[name] = value
        scalars[str(index)] = kept
    return {
        "param_groups": state["param_groups"],
        "state_indices": [int(i) for i in state["state"]],
        "state_scalars": scalars,
    }


def _unflatten_optimizer(
    document: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for index in document["state_indices"]:
        prefix = f"optimizer.state.{index}."
        buffers: dict[str, Any] = dict(document["state_scalars"][str(index)])
        buffers.update(_unprefixed(prefix, tensors))
        state[index] = buffers
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in group.items()}
        for group in document["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def _capture_rng(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    kind, keys, position, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy.keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, python_state, gauss = random.getstate()
    return {
        "numpy": {"kind": kind, "position": position, "has_gauss": has_gauss, "cached": cached},
        "python": {"version": version, "state": list(python_state), "gauss": gauss},
    }


def _restore_rng(document: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [
        tensors[f"rng.cuda.{i}"] for i in range(len(tensors)) if f"rng.cuda.{i}" in tensors
    ]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    numpy_state = document["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            tensors["rng.numpy.keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached"],
        )
    )
    python_state = document["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss"]))
