"""The index's life: opened at start-up, reconciled, rebuilt, and snapshotted.

The database is the truth and the index is derived from it:

* start-up: the snapshot is loaded only if its watermark matches the database,
  else the index is rebuilt from the rows; then a reconcile (ids in the
  database but not the index are added, ids in the index but not the database
  removed), so a row committed just before a crash is searchable after restart;
* while running: the maintenance loop reconciles when another process changed
  the rows, rebuilds when tombstones pile up or IVF can train, and snapshots.

All methods are blocking; callers run them in worker threads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.gallery.live_index import LiveIndex
from app.gallery.store import EntryStore
from app.gallery.versions import ModelVersions
from app.index.gpu_probe import GpuIndexStatus
from app.index.snapshot import SnapshotError, Watermark, load_snapshot, read_header, write_snapshot
from app.index.vector_index import VectorIndex

log = logging.getLogger(__name__)


@dataclass
class StartupReport:
    """Where the index came from at start-up, and why (shown by /ready)."""

    source: str = "empty"
    reason: str = ""
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
        *,
        snapshot_path: Path,
        gpu: GpuIndexStatus,
    ) -> None:
        self._store = store
        self.gpu = gpu  # the start-up GPU check's verdict, for /ready
        self._live = live
        self.versions = versions
        self._snapshot_path = snapshot_path
        self.startup = StartupReport()
        self.last_reconciled: Reconciled | None = None

    # ----------------------------------------------------------------- model versions
    def refresh_versions(self) -> None:
        """Re-read which models made the rows; reconcile once a re-embed has cleared them."""
        if self.versions.refresh():  # e.g. `python -m app.reembed` ran while we were up
            self.reconcile()

    def require_compatible(self) -> None:
        """Refuse (``ModelVersionMismatch``) while the rows hold another model's embeddings.

        Only a gallery already known to be mixed pays for a fresh census, so a
        re-embed that finished meanwhile is noticed at the next request.
        """
        if not self.versions.foreign:
            return
        self.refresh_versions()
        if self.versions.foreign:
            raise self.versions.mismatch()

    # ----------------------------------------------------------------- start-up
    def watermark(self) -> Watermark:
        count, max_id = self._store.state()
        return Watermark(
            model_version=self._store.model_version,
            dim=self._live.dim,
            structure=self._live.spec.structure(),
            count=count,
            max_id=max_id,
        )

    def open(self) -> StartupReport:
        """Start-up: versions census, snapshot or rebuild, then reconcile."""
        started = time.perf_counter()
        self.versions.refresh()
        report = StartupReport()
        index = self._matching_snapshot(report)
        if index is None:
            index = self._build()
            report.source = "rebuild"
        with self._live.lock:
            # A rebuilt index counts as changed, so the unusable snapshot is replaced soon.
            self._live.replace(index, persisted=report.source == "snapshot")
            report.added, report.removed = self._reconcile()
        report.seconds = time.perf_counter() - started
        current = self._live.current
        self.startup = report
        log.info(
            "index ready from %s in %.2fs: %d entries (%s); reconcile added %d, removed %d",
            report.source,
            report.seconds,
            current.count,
            current.effective_type,
            report.added,
            report.removed,
        )
        return report

    def _matching_snapshot(self, report: StartupReport) -> VectorIndex | None:
        """The snapshot's index if its watermark is the database's state now, else None."""
        if not self._snapshot_path.exists():
            report.reason = "no snapshot"
            return None
        expected = self.watermark()
        try:
            header = read_header(self._snapshot_path)
            if header.watermark != expected:
                raise SnapshotError(
                    f"snapshot watermark {header.watermark} does not match the database {expected}"
                )
            index, _ = load_snapshot(self._snapshot_path, self._live.spec)
        except SnapshotError as error:
            report.reason = str(error)
            log.warning("index snapshot not used, rebuilding from the database: %s", error)
            return None
        report.source = "snapshot"
        return index

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

    def in_step(self) -> dict[str, Any]:
        """Compare database and index cheaply (count and highest id); changes nothing."""
        with self._live.lock:
            count, max_id = self._store.state()
            index = self._live.current
            ids = index.ids()
        index_max = int(ids[-1]) if len(ids) else 0
        return {
            "ok": count == len(ids) and max_id == index_max,
            "db_entries": count,
            "index_entries": len(ids),
            "db_max_id": max_id,
            "index_max_id": index_max,
            "index_type": index.effective_type,
            "tombstones": index.tombstone_count,
            "on_gpu": index.on_gpu,
        }

    def rebuild(self) -> None:
        """Build a fresh index from the database and swap it in (compaction, IVF training)."""
        started = time.perf_counter()
        fresh = self._build()
        with self._live.lock:
            self._live.replace(fresh)
            self.reconcile()  # rows written while the build ran
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
        """Persist the index if it changed since the last snapshot."""
        with self._live.lock:
            if not self._live.changed_since_snapshot:
                return False
            if self.versions.foreign:
                return False  # the index is not the gallery; don't persist a partial view
            write_snapshot(self._snapshot_path, self._live.current, self._store.model_version)
            self._live.snapshot_taken()
        return True
