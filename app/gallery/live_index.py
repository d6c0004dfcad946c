"""The index the gallery serves right now, and the lock that keeps it in step with the rows.

Every change to the gallery takes ``lock`` from its database commit to its index
update, so anyone comparing "database state vs index state" under the lock
(readiness, reconcile) never sees the gap between the two. A rebuild swaps in a
fresh index under the same lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np

from app.index.spec import IndexSpec
from app.index.vector_index import VectorIndex
from app.telemetry import Telemetry


class LiveIndex:
    def __init__(self, dim: int, spec: IndexSpec, telemetry: Telemetry) -> None:
        self.dim = dim
        self.spec = spec
        self.lock = threading.RLock()
        self.current = VectorIndex.empty(dim, spec)
        self._telemetry = telemetry
        self._changes_since_snapshot = 0

    @property
    def count(self) -> int:
        """Searchable entries."""
        return self.current.count

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        with self.lock:
            self.current.add(ids, vectors)
            self._changed(len(ids))

    def add_missing(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add what the index does not hold yet (a change replayed from the log)."""
        with self.lock:
            self._changed(self.current.add_missing(ids, vectors))

    def remove(self, ids: Iterable[int]) -> None:
        id_list = list(ids)
        with self.lock:
            self.current.remove(id_list)
            self._changed(len(id_list))

    def replace(self, index: VectorIndex, *, persisted: bool = False) -> None:
        """Serve ``index`` from now on: a rebuild, or (``persisted``) the snapshot on disk."""
        with self.lock:
            self.current = index
            self._changed(0 if persisted else 1)

    def _changed(self, count: int) -> None:
        self._changes_since_snapshot += count
        self._telemetry.gallery_entries.set(self.current.count)

    @property
    def changed_since_snapshot(self) -> bool:
        return self._changes_since_snapshot > 0

    def snapshot_taken(self) -> None:
        """Call under ``lock`` once the current index is persisted."""
        self._changes_since_snapshot = 0
