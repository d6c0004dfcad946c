"""The index's life: opened at start-up, kept in step, rebuilt, and snapshotted.

The database is the truth and the index is derived from it. The change log says
what changed, in commit order; the follower applies it. So:

* start-up: this replica's snapshot is loaded if it fits the loaded model and the
  log still reaches back to its position, and the log after it is replayed; else
  the index is rebuilt from the rows and the log replayed from where the build
  began. A row committed just before a crash is in the log, so it is searchable
  after the restart;
* while running: the follower applies other replicas' changes as they commit;
  the maintenance pass rebuilds when tombstones pile up or IVF can train, and
  snapshots; and, as a safety net for rows written behind the log's back (by
  hand, say), compares the index with the rows whenever the follower is caught up
  and reconciles them if they differ.

All methods are blocking; callers run them in worker threads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.gallery.follower import ChangeFollower
from app.gallery.live_index import LiveIndex
from app.gallery.store import EntryStore
from app.gallery.versions import ModelVersions
from app.index.gpu_probe import GpuIndexStatus
from app.index.snapshot import SnapshotError, load_snapshot, read_header, write_snapshot
from app.index.vector_index import VectorIndex

log = logging.getLogger(__name__)


@dataclass
class StartupReport:
    """Where the index came from at start-up, and why (shown by /ready)."""

    source: str = "empty"
    reason: str = ""
    replayed: int = 0
    added: int = 0
    removed: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Reconciled:
    """What the last reconcile that changed anything did, and when (epoch seconds)."""

    added: int
    removed: int
    at: float


class IndexLifecycle:
    def __init__(
        self,
        store: EntryStore,
        live: LiveIndex,
        versions: ModelVersions,
        follower: ChangeFollower,
        *,
        snapshot_path: Path,
        gpu: GpuIndexStatus,
    ) -> None:
        self._store = store
        self.gpu = gpu  # the start-up GPU check's verdict, for /ready
        self._live = live
        self.versions = versions
        self.follower = follower
        self._snapshot_path = snapshot_path
        self.startup = StartupReport()
        self.snapshot_seq: int | None = None  # the position of this replica's snapshot on disk
        self.last_reconciled: Reconciled | None = None

    # ----------------------------------------------------------------- model versions
    def refresh_versions(self) -> None:
        """Re-read which entries lack this model's embedding (the re-embedded ones come
        into the index through the change log, like any other change)."""
        self.versions.refresh()

    def require_compatible(self) -> None:
        """Refuse (``ModelVersionMismatch``) until every entry has held this model's
        embedding once.

        Only a gallery already known to be mixed pays for a fresh census, so a
        re-embed that finished meanwhile is noticed at the next request.
        """
        if not self.versions.refusing:
            return
        self.refresh_versions()
        if self.versions.refusing:
            raise self.versions.mismatch()

    # ----------------------------------------------------------------- start-up
    def open(self) -> StartupReport:
        """Start-up: versions census, snapshot or rebuild, replay the log, check the rows."""
        started = time.perf_counter()
        self.versions.refresh()
        report = StartupReport()
        loaded = self._matching_snapshot(report)
        if loaded is None:
            seq = self.follower.log.head()  # before the build: replaying from here is exact
            index = self._build()
            report.source = "rebuild"
        else:
            index, seq = loaded
            self.snapshot_seq = seq
        with self._live.lock:
            # A rebuilt index counts as changed, so the unusable snapshot is replaced soon.
            self._live.replace(index, persisted=report.source == "snapshot")
            self.follower.start_at(seq)
        report.replayed = self.follower.catch_up()
        report.added, report.removed = self.keep_in_step()
        report.seconds = time.perf_counter() - started
        current = self._live.current
        self.startup = report
        log.info(
            "index ready from %s in %.2fs: %d entries (%s); replayed %d changes; "
            "reconcile added %d, removed %d",
            report.source,
            report.seconds,
            current.count,
            current.effective_type,
            report.replayed,
            report.added,
            report.removed,
        )
        return report

    def _matching_snapshot(self, report: StartupReport) -> tuple[VectorIndex, int] | None:
        """The snapshot's index and position if the log can bring it up to date, else None."""
        if not self._snapshot_path.exists():
            report.reason = "no snapshot"
            return None
        try:
            header = read_header(self._snapshot_path)
            mark = header.watermark
            expected = (self._store.model_version, self._live.dim, self._live.spec.structure())
            if (mark.model_version, mark.dim, mark.structure) != expected:
                raise SnapshotError(
                    f"snapshot watermark {mark} does not fit the loaded model and index {expected}"
                )
            head, oldest = self.follower.log.head(), self.follower.log.oldest()
            if mark.seq > head:
                raise SnapshotError(
                    f"snapshot watermark seq {mark.seq} is past the change log's head {head} "
                    "(another database?)"
                )
            if mark.seq < head and (oldest is None or oldest > mark.seq + 1):
                raise SnapshotError(
                    f"snapshot watermark seq {mark.seq} is older than the change log keeps "
                    f"(oldest {oldest})"
                )
            index, _ = load_snapshot(self._snapshot_path, self._live.spec)
        except SnapshotError as error:
            report.reason = str(error)
            log.warning("index snapshot not used, rebuilding from the database: %s", error)
            return None
        report.source = "snapshot"
        return index, mark.seq

    def _build(self) -> VectorIndex:
        return VectorIndex.build(self._live.dim, self._live.spec, self._store.vector_chunks())

    # ----------------------------------------------------------------- keeping in step
    def reconcile(self) -> tuple[int, int]:
        """Make the index hold exactly this model's rows; returns (added, removed)."""
        with self._live.lock:
            added, removed = self._reconcile()
        if added or removed:
            self.last_reconciled = Reconciled(added, removed, time.time())
            log.warning("reconciled index with database: added %d, removed %d", added, removed)
        return added, removed

    def _reconcile(self) -> tuple[int, int]:
        db_ids = self._store.ids()
        index_ids = self._live.current.ids()
        missing = np.setdiff1d(db_ids, index_ids, assume_unique=True)
        extra = np.setdiff1d(index_ids, db_ids, assume_unique=True)
        if len(extra):
            self._live.remove(int(i) for i in extra)
        for ids, vectors in self._store.vector_chunks(missing):
            self._live.add(ids, vectors)
        return len(missing), len(extra)

    def keep_in_step(self) -> tuple[int, int]:
        """Apply the log; then, once caught up, reconcile if the index and the rows differ
        (rows written behind the log's back). Returns the reconcile's (added, removed)."""
        self.follower.catch_up()
        if self.in_step()["ok"]:
            return 0, 0
        return self.reconcile()

    def in_step(self) -> dict[str, Any]:
        """Compare database and index cheaply (count and highest id); changes nothing.

        The rows are read at one change-log position; the comparison means something
        only when the follower has applied that position (``compared``). While it
        lags, the replication check judges the replica instead.
        """
        with self._live.lock:
            rows = self._store.state()
            applied = self.follower.applied
            index = self._live.current
            ids = index.ids()
        index_max = int(ids[-1]) if len(ids) else 0
        compared = applied >= rows.head
        same = rows.count == len(ids) and rows.max_id == index_max
        return {
            "ok": same or not compared,
            "compared": compared,
            "db_entries": rows.count,
            "index_entries": len(ids),
            "db_max_id": rows.max_id,
            "index_max_id": index_max,
            "index_type": index.effective_type,
            "tombstones": index.tombstone_count,
            "on_gpu": index.on_gpu,
        }

    def rebuild(self) -> None:
        """Build a fresh index from the database and swap it in (compaction, IVF training)."""
        started = time.perf_counter()
        seq = self.follower.log.head()
        fresh = self._build()
        with self._live.lock:
            self._live.replace(fresh)
            self.follower.start_at(min(seq, self.follower.applied))
        self.follower.catch_up()  # what was committed while the build ran
        log.info(
            "index rebuilt in %.2fs: %d entries (%s)",
            time.perf_counter() - started,
            fresh.count,
            fresh.effective_type,
        )

    def maybe_rebuild(self) -> bool:
        current = self._live.current
        if current.needs_compaction or current.needs_training:
            self.rebuild()
            return True
        return False

    def write_snapshot(self) -> bool:
        """Persist the index if it changed since the last snapshot, at the log's position
        after catching up (so the next start replays as little as possible)."""
        self.follower.catch_up()
        with self._live.lock:
            if not self._live.changed_since_snapshot:
                return False
            if self.versions.refusing:
                return False  # the index is not the gallery; don't persist a partial view
            seq = self.follower.applied
            write_snapshot(self._snapshot_path, self._live.current, self._store.model_version, seq)
            self.snapshot_seq = seq
            self._live.snapshot_taken()
        return True
