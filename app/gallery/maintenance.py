"""Periodic upkeep, the only writer of the index besides the gallery's own operations.

Each pass: re-read which models made the rows, apply the change log and
reconcile when rows were written behind its back (readiness only reports it),
rebuild when tombstones pile up or
IVF can train, snapshot when due, and on the first pass sweep crop files that
no row refers to (left by a crash between writing a crop and committing), and
the thumbnails of crops no row refers to.
"""

from __future__ import annotations

import asyncio
import logging
import time

from app.gallery.crops import CropStore
from app.gallery.lifecycle import IndexLifecycle
from app.gallery.store import EntryStore
from app.gallery.thumbnails import Thumbnails

log = logging.getLogger(__name__)


class Maintenance:
    def __init__(
        self,
        *,
        lifecycle: IndexLifecycle,
        store: EntryStore,
        crops: CropStore,
        thumbnails: Thumbnails,
        interval_s: float,
        snapshot_interval_s: float,
    ) -> None:
        self._lifecycle = lifecycle
        self._store = store
        self._crops = crops
        self._thumbnails = thumbnails
        self.interval_s = interval_s
        self.snapshot_interval_s = snapshot_interval_s
        self._last_snapshot_at = time.monotonic()
        self._swept = False

    def run_once(self) -> None:
        """One blocking pass (the loop runs it in a worker thread)."""
        lifecycle = self._lifecycle
        lifecycle.refresh_versions()
        lifecycle.keep_in_step()
        lifecycle.maybe_rebuild()
        if time.monotonic() - self._last_snapshot_at >= self.snapshot_interval_s:
            lifecycle.write_snapshot()
            self._last_snapshot_at = time.monotonic()
        if not self._swept:
            self._crops.sweep_orphans(self._store.referenced_hashes)
            self._thumbnails.sweep_orphans(self._store.referenced_hashes)
            self._swept = True

    async def loop(self) -> None:
        """Run a pass now and then every ``interval_s``; a failed pass is logged and retried."""
        while True:
            try:
                await asyncio.to_thread(self.run_once)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("maintenance pass failed; will retry")
            await asyncio.sleep(self.interval_s)
