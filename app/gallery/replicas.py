"""The replica registry: which processes follow the change log, and how far each has got.

Each replica writes its own row (heartbeat and applied position). Others read the
rows for two decisions: how much of the change log may be pruned (what every
replica heard from recently has applied), and whose jobs died with their replica.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.functions import coalesce

from app.db.models import Replica


def _now() -> datetime:
    return datetime.now(UTC)


class ReplicaRegistry:
    def __init__(
        self, sessions: sessionmaker[Session], *, replica_id: str, model_version: str
    ) -> None:
        self._sessions = sessions
        self.replica_id = replica_id
        self._model_version = model_version

    def register(self, applied: int, snapshot: int | None) -> None:
        """Announce this replica (again, after a restart) at its start-up position.

        ``snapshot`` is the position of its snapshot on disk, if it has one: the log
        after it is what its next start will replay, so retention keeps it.
        """
        now = _now()
        with self._sessions() as session:
            row = session.get(Replica, self.replica_id)
            if row is None:
                row = Replica(replica_id=self.replica_id)
                session.add(row)
            row.model_version = self._model_version
            row.applied_seq = applied
            row.snapshot_seq = snapshot
            row.started_at = now
            row.heartbeat_at = now
            row.stopped_at = None
            session.commit()

    def heartbeat(self, applied: int, snapshot: int | None) -> None:
        """Report the position; re-register if another replica forgot this one meanwhile."""
        with self._sessions() as session:
            result = session.execute(
                update(Replica)
                .where(Replica.replica_id == self.replica_id)
                .values(applied_seq=applied, snapshot_seq=snapshot, heartbeat_at=_now())
            )
            session.commit()
        if not result.rowcount:  # type: ignore[attr-defined]
            self.register(applied, snapshot)

    def stopped(self) -> None:
        """A clean shutdown: this replica's model version no longer serves from here."""
        with self._sessions() as session:
            session.execute(
                update(Replica)
                .where(Replica.replica_id == self.replica_id)
                .values(stopped_at=_now())
            )
            session.commit()

    def serving_versions(self, within_s: float) -> set[str]:
        """The model versions of running replicas (heard from within ``within_s``)."""
        since = _now() - timedelta(seconds=within_s)
        with self._sessions() as session:
            return set(
                session.scalars(
                    select(Replica.model_version)
                    .where(Replica.heartbeat_at >= since, Replica.stopped_at.is_(None))
                    .distinct()
                ).all()
            )

    def retention_floor(self, forget_after_s: float) -> int | None:
        """The oldest position a replica heard from within ``forget_after_s`` still needs."""
        since = _now() - timedelta(seconds=forget_after_s)
        needed = coalesce(Replica.snapshot_seq, Replica.applied_seq)
        with self._sessions() as session:
            value = session.scalar(select(func.min(needed)).where(Replica.heartbeat_at >= since))
        return None if value is None else int(value)

    def silent(self, for_s: float) -> set[str]:
        """Replicas not heard from for ``for_s`` seconds (stopped, killed or cut off)."""
        since = _now() - timedelta(seconds=for_s)
        with self._sessions() as session:
            rows = session.scalars(
                select(Replica.replica_id).where(Replica.heartbeat_at < since)
            ).all()
        return set(rows) - {self.replica_id}

    def forget(self, replica_ids: set[str]) -> None:
        if not replica_ids:
            return
        with self._sessions() as session:
            session.execute(delete(Replica).where(Replica.replica_id.in_(sorted(replica_ids))))
            session.commit()
