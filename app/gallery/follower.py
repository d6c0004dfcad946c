"""A replica's index following the change log, and how far behind the database it is.

Applying a change re-reads the entry's row as it is now: a row of this model
version is made present in the index, anything else (deleted, or re-embedded by
another model) absent. So applying is idempotent and order-insensitive, which
is what lets the gallery's own writes go straight into the index (read-your-writes)
while the follower, reaching the same changes later, finds nothing left to do;
and what lets a snapshot taken at one position be replayed from that position
whatever was applied after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from app.gallery.change_log import Change, ChangeLog
from app.gallery.live_index import LiveIndex
from app.gallery.store import EntryStore
from app.telemetry import Telemetry

_BATCH = 5000


@dataclass(frozen=True)
class FeedPosition:
    """Where a replica stands: the change it applied last, the database's newest, the lag."""

    applied: int
    head: int
    lag_seconds: float

    @property
    def lag_changes(self) -> int:
        return max(self.head - self.applied, 0)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "applied_seq": self.applied,
            "head_seq": self.head,
            "lag_changes": self.lag_changes,
            "lag_seconds": round(self.lag_seconds, 3),
        }


class ChangeFollower:
    def __init__(
        self, log: ChangeLog, store: EntryStore, live: LiveIndex, telemetry: Telemetry
    ) -> None:
        self.log = log
        self._store = store
        self._live = live
        self._telemetry = telemetry
        self.applied = 0
        self.last_applied_at = time.time()
        self._catching_up = threading.Lock()  # the loop and a maintenance pass may both call
        self.on_lacking: Callable[[], None] = lambda: None

    def start_at(self, seq: int) -> None:
        """The index now reflects the log up to ``seq`` (a snapshot's, or a rebuild's)."""
        self.applied = seq
        self._telemetry.applied_seq.set(seq)

    def catch_up(self) -> int:
        """Apply every committed change after ``applied``; returns how many were read."""
        total = 0
        with self._catching_up:
            while True:
                with self._live.lock:
                    changes = self.log.since(self.applied, _BATCH, self._store.model_version)
                    if changes:
                        self._apply(changes)
                        self.applied = changes[-1].seq
                total += len(changes)
                if len(changes) < _BATCH:
                    break
        if total:
            self.last_applied_at = time.time()
            self._telemetry.applied_seq.set(self.applied)
            self._telemetry.changes_applied.inc(total)
        return total

    def _apply(self, changes: list[Change]) -> None:
        present = {c.entry_id: c.embedding for c in changes if c.embedding is not None}
        gone = {c.entry_id for c in changes if c.entry_id not in present}
        if any(c.exists and c.embedding is None for c in changes):
            self.on_lacking()  # enrolled through another model's replica: embed it here too
        if gone:
            self._live.remove(sorted(gone))
        if present:
            ids = np.fromiter(present, dtype=np.int64, count=len(present))
            self._live.add_missing(ids, self._store.vectors_of(present.values()))  # type: ignore[arg-type]

    def position(self) -> FeedPosition:
        """The replica's lag: changes not applied yet, and how long the oldest has waited."""
        applied = self.applied
        head = self.log.head()
        waiting_since = self.log.first_unapplied_at(applied) if head > applied else None
        lag = 0.0
        if waiting_since is not None:
            lag = max((datetime.now(UTC) - waiting_since).total_seconds(), 0.0)
        self._telemetry.head_seq.set(head)
        self._telemetry.lag_changes.set(max(head - applied, 0))
        self._telemetry.lag_seconds.set(lag)
        return FeedPosition(applied=applied, head=head, lag_seconds=lag)
