"""SQLite serves one process: a second one on the same file is refused at start-up.

Two processes would each follow the log and write their own snapshot, but
SQLite has no notifications and one writer at a time, and the embedded default is
meant for one process. An exclusive ``flock`` on a file beside the database says
so at once; the kernel releases it when its holder dies, even by ``kill -9``, so
a crash never leaves a stale lock behind. Scale out on PostgreSQL instead.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class DatabaseInUse(RuntimeError):
    """Another service process already serves this SQLite database."""


class SingleProcessLock:
    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 (held open for the process's life)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DatabaseInUse(
                f"the SQLite database {self.path.with_suffix('')} is already served by "
                f"{holder}; SQLite serves one process. Stop that one, give this one another "
                "REID_DATA_DIR, or run several replicas on PostgreSQL (REID_DATABASE_URL)"
            ) from None
        handle.truncate(0)
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the lock
            self._handle = None
