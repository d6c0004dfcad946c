"""This process as one replica among several: following the log, and being known to the others.

Every replica runs the same loop, so there is no leader to elect or lose:

* follow: wait for a ``NOTIFY`` (or the poll interval), then apply what the log
  holds past this replica's position;
* heartbeat: write this replica's position to the registry now and then;
* upkeep, once per maintenance interval: prune the change log below what every
  replica heard from recently has applied; fail the jobs of replicas silent too
  long (their uploads died with them); forget replicas silent past the forget
  bound, with their snapshot and job files when they shared this data directory.

Each step is idempotent and safe to run on several replicas at once.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time

from app.db.notifications import Notifications
from app.gallery.follower import FeedPosition
from app.gallery.lifecycle import IndexLifecycle
from app.gallery.replicas import ReplicaRegistry
from app.jobs.job_store import JobStore
from app.settings import Settings

log = logging.getLogger(__name__)


class ReplicaLoop:
    def __init__(
        self,
        *,
        lifecycle: IndexLifecycle,
        notifications: Notifications,
        registry: ReplicaRegistry,
        jobs: JobStore,
        settings: Settings,
    ) -> None:
        self._lifecycle = lifecycle
        self.follower = lifecycle.follower
        self._notifications = notifications
        self.registry = registry
        self._jobs = jobs
        self._settings = settings
        self._heartbeat_every_s = settings.replica_silent_after_s / 6
        self._last_heartbeat = 0.0
        self._last_upkeep = 0.0

    @property
    def replica_id(self) -> str:
        return self.registry.replica_id

    def position(self) -> FeedPosition:
        return self.follower.position()

    def lagging(self, position: FeedPosition) -> bool:
        return position.lag_seconds > self._settings.max_replica_lag_s

    def step(self) -> None:
        """One blocking round: catch up, heartbeat when due, upkeep when due."""
        self.follower.catch_up()
        now = time.monotonic()
        if now - self._last_heartbeat >= self._heartbeat_every_s:
            self.registry.heartbeat(self.follower.applied, self._lifecycle.snapshot_seq)
            self._last_heartbeat = now
        if now - self._last_upkeep >= self._settings.maintenance_interval_s:
            self.upkeep()
            self._last_upkeep = now

    def upkeep(self) -> None:
        settings = self._settings
        floor = self.registry.retention_floor(settings.replica_forget_after_s)
        if floor is not None:
            pruned = self.follower.log.prune(floor)
            if pruned:
                log.info("pruned %d applied change(s) from the change log", pruned)
        silent = self.registry.silent(settings.replica_silent_after_s)
        failed = self._jobs.fail_of(
            silent,
            f"the replica running the job stopped answering (no heartbeat for "
            f"{settings.replica_silent_after_s:.0f} s) before it finished; submit it again",
        )
        if failed:
            log.warning("failed %d job(s) of silent replica(s) %s", failed, sorted(silent))
        forgotten = self.registry.silent(settings.replica_forget_after_s)
        self.registry.forget(forgotten)
        for replica_id in forgotten:
            self._remove_files_of(replica_id)

    def _remove_files_of(self, replica_id: str) -> None:
        data_dir = self._settings.data_dir
        (data_dir / "snapshots" / f"{replica_id}.snapshot").unlink(missing_ok=True)
        shutil.rmtree(data_dir / "jobs" / replica_id, ignore_errors=True)
        log.info("forgot replica %s (silent past the forget bound)", replica_id)

    async def run(self) -> None:
        """Follow until cancelled; a failed round (database away) is logged and retried."""
        while True:
            await asyncio.to_thread(self._notifications.wait, self._settings.change_poll_interval_s)
            try:
                await asyncio.to_thread(self.step)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following the change log failed; will retry")

    def close(self) -> None:
        self._notifications.close()

    def stopped(self) -> None:
        """A clean shutdown: report the final snapshot, and that this version stops serving."""
        self.registry.heartbeat(self.follower.applied, self._lifecycle.snapshot_seq)
        self.registry.stopped()
