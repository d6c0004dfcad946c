"""Shared fixtures for the deployment tests: the repository's deploy files, parsed."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ENV_PREFIX = Settings.model_config["env_prefix"]


class ComposeLoader(yaml.SafeLoader):
    """SafeLoader plus Compose's merge tags (`!reset`, `!override`), kept as markers."""


class ComposeTag:
    """A `!reset` / `!override` node and the value it carries."""

    def __init__(self, tag: str, value: Any) -> None:
        self.tag = tag
        self.value = value


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> ComposeTag:
    value: Any
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    return ComposeTag(node.tag, value)


ComposeLoader.add_constructor("!reset", _tagged)
ComposeLoader.add_constructor("!override", _tagged)


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=ComposeLoader)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return _load(REPO / "docker-compose.yml")


@pytest.fixture(scope="session")
def cpu_override() -> dict[str, Any]:
    return _load(REPO / "docker" / "docker-compose.cpu.yml")


@pytest.fixture(scope="session")
def setting_env_names() -> set[str]:
    """Every environment variable the service's settings class reads."""
    return {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}


_ASSIGNMENT = re.compile(r"^#?([A-Z][A-Z0-9_]*)=")


@pytest.fixture(scope="session")
def env_example() -> dict[str, bool]:
    """Variables assigned in docker/.env.example -> whether the line is active."""
    names: dict[str, bool] = {}
    text = (REPO / "docker" / ".env.example").read_text(encoding="utf-8")
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line.strip())
        if match:
            active = not line.lstrip().startswith("#")
            names[match.group(1)] = names.get(match.group(1), False) or active
    return names


@pytest.fixture
def clean_env() -> Callable[..., dict[str, str]]:
    """An environment without the caller's REID_* variables (so a developer's own
    configuration cannot leak in), with this interpreter's bin directory first on
    PATH the way the image puts /opt/venv/bin first."""

    def make(**overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(overrides)
        return env

    return make
