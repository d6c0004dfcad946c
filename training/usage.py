"""The one error every training command reports as a usage error (exit status 2).

Each command's ``main`` catches it and hands the message to argparse, so a user
sees what to fix, never a traceback.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Input the user can fix: a path, a flag value, a dataset that is not laid out right."""
