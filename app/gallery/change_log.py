"""The gallery's change log: every SQL statement on ``gallery_changes``.

Writers append the ids of the entries a transaction touched, inside that
transaction; replicas read the log in ``seq`` order and re-read each touched row
as it is now. Two properties make that exact:

* **commit order.** PostgreSQL hands out sequence numbers at insert time, not at
  commit, so a reader could see seq 11 committed while seq 10 is still in flight,
  move past 10 and never apply it. Appending therefore takes a transaction-level
  advisory lock that is held until commit: the change rows of two transactions
  can never interleave, and a number is visible only after every smaller one.
  SQLite has one writer at a time already.
* **promptness.** The append also queues a ``NOTIFY``, which PostgreSQL delivers
  at commit (never for a rolled-back transaction), so replicas wake at once; they
  poll as well, so a lost notification only delays.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import case, delete, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import GalleryChange, GalleryEntry

CHANNEL = "reid_gallery_changes"
# Any constant: the key of the advisory lock that orders appends (ASCII "reidfeed").
_APPEND_LOCK = 0x7265696466656564


class Change(NamedTuple):
    """One change as a replica of one model version applies it: the row as it is now."""

    seq: int
    entry_id: int
    exists: bool
    embedding: bytes | None  # the row's embedding of the replica's model, if it holds one


def append(session: Session, entry_ids: Iterable[int]) -> None:
    """Record that ``entry_ids`` changed, in ``session``'s transaction (before its commit)."""
    rows = [{"entry_id": int(entry_id)} for entry_id in entry_ids]
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    session.execute(insert(GalleryChange), rows)


class ChangeLog:
    """Reads and prunes the log (appending happens inside the writers' transactions)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def head(self) -> int:
        """The newest change's number (0 for a log that was never written)."""
        with self.sessions() as session:
            return int(session.scalar(select(func.max(GalleryChange.seq))) or 0)

    def oldest(self) -> int | None:
        """The oldest change still kept, or None for an empty log."""
        with self.sessions() as session:
            value = session.scalar(select(func.min(GalleryChange.seq)))
        return None if value is None else int(value)

    def since(self, after: int, limit: int, model_version: str) -> list[Change]:
        """Up to ``limit`` changes after ``after``, in order, each with its row's state now
        as a replica of ``model_version`` sees it."""
        statement = (
            select(
                GalleryChange.seq,
                GalleryChange.entry_id,
                GalleryEntry.id.is_not(None),
                case(
                    (GalleryEntry.holds(model_version), GalleryEntry.vector_of(model_version)),
                    else_=None,
                ),
            )
            .outerjoin(GalleryEntry, GalleryEntry.id == GalleryChange.entry_id)
            .where(GalleryChange.seq > after)
            .order_by(GalleryChange.seq)
            .limit(limit)
        )
        with self.sessions() as session:
            return [Change(*row) for row in session.execute(statement).all()]

    def first_unapplied_at(self, applied: int) -> datetime | None:
        """When the oldest change after ``applied`` was committed (None: nothing after it)."""
        with self.sessions() as session:
            return session.scalar(
                select(GalleryChange.created_at)
                .where(GalleryChange.seq > applied)
                .order_by(GalleryChange.seq)
                .limit(1)
            )

    def prune(self, through: int) -> int:
        """Delete changes up to ``through``, always keeping the newest (it names the head)."""
        with self.sessions() as session:
            result = session.execute(
                delete(GalleryChange).where(
                    GalleryChange.seq <= through,
                    GalleryChange.seq < select(func.max(GalleryChange.seq)).scalar_subquery(),
                )
            )
            session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
