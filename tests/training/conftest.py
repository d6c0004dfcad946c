"""Puts tests/support/ on sys.path for the shared dataset fixtures.

pytest's importlib mode puts no test folder there; tests/ itself must not be on it,
because its model/ and training/ folders would shadow the real packages.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
