"""Enrolled crops on disk, content-addressed: ``crops/ab/cd/<sha256>``.

The bytes are kept so the gallery can be re-embedded when the model changes
(``python -m app.reembed``) and are deleted with their entry (right to
erasure). A sha256 belongs to at most one entry (the table enforces it), so a
file never needs reference counting.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CropStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, data: bytes) -> bool:
        """Store durably; returns False when the file already existed.

        An existing file is touched: it may be an old orphan that a sweep (on any
        replica) would otherwise delete between this check and the row's commit.
        """
        path = self.path_for(sha256)
        if path.exists():
            try:
                os.utime(path)
                return False
            except FileNotFoundError:  # swept just now: write it again
                pass
        write_atomically(path, data)
        return True

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def delete(self, sha256s: Iterable[str]) -> int:
        """Remove files (missing ones are fine); returns how many were removed."""
        removed = 0
        for sha256 in sha256s:
            try:
                self.path_for(sha256).unlink()
                removed += 1
            except FileNotFoundError:
                continue
            except OSError as error:  # the row is gone; the orphan sweep retries the file
                log.warning("could not delete crop %s: %s", sha256, error)
        return removed

    def sweep_orphans(
        self, known: Callable[[list[str]], set[str]], *, min_age_s: float = 3600.0
    ) -> int:
        """Delete files no entry refers to (left by a crash between write and commit).

        Files younger than ``min_age_s`` are left alone: they may belong to an
        enrollment whose database commit is still in flight.
        """
        cutoff = time.time() - min_age_s
        removed = 0
        batch: list[Path] = []

        def flush() -> None:
            nonlocal removed
            referenced = known([path.name for path in batch])
            for path in batch:
                if path.name not in referenced:
                    path.unlink(missing_ok=True)
                    removed += 1
            batch.clear()

        for path in self.root.glob("*/*/*"):
            if _SHA256.match(path.name) and path.stat().st_mtime < cutoff:
                batch.append(path)
                if len(batch) >= 1000:
                    flush()
        if batch:
            flush()
        if removed:
            log.info("removed %d orphaned crop file(s)", removed)
        return removed


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` durably so a reader sees no file or the whole one, even after a crash;
    concurrent writers of the same content are safe (each renames its own temporary)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique across processes and hosts sharing the store (containers all run as pid 1).
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
