"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

# A red CI run lands nothing, so property tests replay a fixed, reproducible set of examples
# by default. `pytest --hypothesis-profile=explore` draws fresh random examples on every
# run; use it (several times) after touching the code those tests cover.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", database=None)
settings.load_profile("ci")

REPO_ROOT = Path(__file__).resolve().parents[1]

RunModule = Callable[..., subprocess.CompletedProcess[str]]


def run_python_module(
    module: str, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` in a fresh interpreter, as a user types it in the repository.

    The caller's REID_* variables are dropped (a developer's own service configuration
    must not change what a test sees; ``env`` adds what the test means), and stdin is
    a closed pipe, so a command that unexpectedly prompts fails instead of hanging.
    The timeout is a guard against a hung CI job, not a performance claim.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REID_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def run_module() -> RunModule:
    return run_python_module
