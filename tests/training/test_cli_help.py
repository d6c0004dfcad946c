"""Every command-line tool answers --help with its usage and nothing else.

A tool that printed its help and then a traceback (or a stray "null") once slipped
through, because its tests called it with arguments only. This runs each one as a
user would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [
    "training.run",
    "training.evaluate",
    "training.calibrate",
    "training.datasets",
    "training.data.synthetic",
    "training.data.preview",
    "app.keys",
    "app.reembed",
]


@pytest.mark.parametrize("module", COMMANDS)
def test_help_is_usage_and_nothing_else(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
    assert result.stderr == ""
    assert "Traceback" not in result.stdout and not result.stdout.rstrip().endswith("null")
    # argparse %-formats help= strings but not a description: "%%" there shows as is
    assert "%%" not in result.stdout


def test_the_demo_script_answers_help_without_training() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/demo.py", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: make demo") and "--run-dir" in result.stdout
    assert result.stderr == ""
