"""Database tables: the gallery (source of truth for every vector), its change log and the
replicas that follow it, jobs, site calibrations.

Alembic migrations in ``alembic/versions`` must describe exactly these tables;
tests/app/test_migrations.py compares them on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    and_,
    case,
    or_,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import ColumnElement

# Explicit constraint names keep migrations identical on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
EntryId = BigInteger().with_variant(Integer(), "sqlite")


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps go in as UTC and always come out timezone-aware.

    SQLite has no time zone type and hands back naive values; normalising to
    UTC on the way in also makes its text comparisons order correctly, which
    the captured_at time-window filter relies on.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class GalleryEntry(Base):
    """One enrolled crop: who it shows, where it came from, and its embedding.

    ``sha256`` is unique across the whole gallery: the same bytes can belong to
    one identity only, which makes re-sending a crop idempotent.
    """

    __tablename__ = "gallery_entries"
    __table_args__ = (
        Index("ix_gallery_entries_identity_id", "identity", "id"),
        Index("ix_gallery_entries_camera_id", "camera", "id"),
        # Covers the open-set decision's count of the identities a query's filters leave
        # (EntryStore.admitted_counts), so it reads this index alone, never the wide rows.
        Index(
            "ix_gallery_entries_model_version_identity_camera_captured_at",
            "model_version",
            "identity",
            "camera",
            "captured_at",
        ),
        # Never reuse the id of a deleted row: FAISS ids and snapshots key on it.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EntryId, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    camera: Mapped[str | None] = mapped_column(String(64))
    captured_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source: Mapped[str | None] = mapped_column(String(256))
    extra: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    image_format: Mapped[str] = mapped_column(String(8))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    embedding_dim: Mapped[int] = mapped_column(Integer)
    model_version: Mapped[str] = mapped_column(String(64), index=True)
    # A second model's embedding, held while two model versions serve side by side (a
    # zero-downtime upgrade): replicas of either version find their own in one of the
    # two slots. Empty outside an upgrade.
    alt_embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    alt_model_version: Mapped[str | None] = mapped_column(String(64), index=True)

    @classmethod
    def holds(cls, version: str) -> ColumnElement[bool]:
        """Rows with an embedding of ``version`` in either slot (a SQL condition, never
        NULL: its negation must select the rows that lack ``version``)."""
        second = and_(cls.alt_model_version.is_not(None), cls.alt_model_version == version)
        return or_(cls.model_version == version, second)

    @classmethod
    def vector_of(cls, version: str) -> Any:
        """The embedding of ``version``, from the slot that holds it (a SQL expression)."""
        return case((cls.model_version == version, cls.embedding), else_=cls.alt_embedding)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class GalleryChange(Base):
    """One entry touched by a committed transaction: enrolled, deleted or re-embedded.

    Appended in the same transaction as the row change, and numbered in commit order
    (writers serialise on a lock for the moment of the append), so a replica that has
    applied every change up to ``seq`` holds exactly the rows as of that commit. A
    change says only *which* entry changed: the replica reads the row as it is now,
    so applying a change twice, or after a later one, gives the same index.
    """

    __tablename__ = "gallery_changes"
    __table_args__ = ({"sqlite_autoincrement": True},)

    seq: Mapped[int] = mapped_column(EntryId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(EntryId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class Replica(Base):
    """A service process that follows the change log, as it last reported itself.

    Change-log retention keeps what a live replica's next start needs: the log after
    its snapshot (``snapshot_seq``), else after what it has applied. A replica
    silent for longer than the forget bound no longer holds the log back (it
    rebuilds from the rows when it returns); one silent for a shorter bound has
    its jobs failed.
    """

    __tablename__ = "replicas"

    replica_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(64))
    applied_seq: Mapped[int] = mapped_column(BigInteger)
    snapshot_seq: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set by a clean shutdown: its model version no longer serves (its embeddings may go).
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EvaluationJob(Base):
    """An accepted POST /evaluate; survives restarts so its outcome is never lost."""

    __tablename__ = "evaluation_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    model_version: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    # The replica that accepted the job and runs it: its uploads are on that replica's disk.
    replica_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SiteCalibration(Base):
    """An open-set calibration fitted on this site's gallery (POST /calibrate), per model.

    Keyed by the model version: scores of another network mean other thresholds, so a
    calibration never outlives its model, and switching back to a model finds its own.
    ``calibration`` is ``model.evaluation.calibration.Calibration.to_dict()``;
    ``details`` says how the probes were used (mated, non-mated, whose identities).
    """

    __tablename__ = "site_calibrations"

    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    calibration: Mapped[dict[str, Any]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
