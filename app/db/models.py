"""Database tables: the gallery (source of truth for every vector), jobs, site calibrations.

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
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SiteCalibration(Base):
    """An open-set calibration fitted on this site's gallery (POST /calibrate), per model.

    Keyed by the model version: scores of another network mean other thresholds, so a
    calibration never outlives its model, and switching back to a model finds its own.
    ``calibration`` is ``model.evaluation.calibration.Calibration.to_dict()``;
    ``details`` says how the probes were split (mated, non-mated, withheld).
    """

    __tablename__ = "site_calibrations"

    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    calibration: Mapped[dict[str, Any]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
