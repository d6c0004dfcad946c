"""The one error every training command reports as a usage error (exit status 2).

Each command's ``main`` catches it and hands the message to argparse, so a user
sees what to fix, never a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any


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


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    command: Callable[[argparse.Namespace], Any],
) -> tuple[int, argparse.Namespace | None, Any]:
    """Parse ``argv`` and run ``command``; a UsageError becomes argparse's exit status 2.

    Returns (status, arguments, result) instead of exiting, so ``main`` functions stay
    callable from tests and from other programs. ``arguments`` is None when the command
    did not run: a usage error, or ``--help`` (status 0, with nothing to report).
    """
    try:
        args = parser.parse_args(argv)
        try:
            return 0, args, command(args)
        except UsageError as error:
            parser.error(str(error))
    except SystemExit as exit_:
        return (exit_.code if isinstance(exit_.code, int) else 1), None, None
