"""The one error every training command reports as a usage error (exit status 2).

Each command's ``main`` catches it and hands the message to argparse, so a user
sees what to fix, never a traceback.
"""

from __future__ import annotations

import argparse


class UsageError(ValueError):
    """Input the user can fix: a path, a flag value, a dataset that is not laid out right."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1, or a message saying what was given."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value
