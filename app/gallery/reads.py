"""Read-only views of the gallery: entries, identities, stored crops and their thumbnails.

These never touch the index: the database is the truth, so a listing or an
identity's summary is exactly what is committed, whatever the index holds.
(A thumbnail's first read writes it to its cache; nothing else is written.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import GalleryEntry
from app.gallery.crops import CropStore
from app.gallery.errors import CropMissing, EntryNotFound, IdentityNotFound
from app.gallery.thumbnails import Thumbnails, ThumbnailSize
from model.preprocessing import ImageDecodeError


@dataclass(frozen=True)
class IdentityCounts:
    identity: str
    entry_count: int
    first_enrolled_at: datetime | None
    last_enrolled_at: datetime | None


@dataclass(frozen=True)
class IdentityRecord(IdentityCounts):
    cameras: list[str]
    first_captured_at: datetime | None
    last_captured_at: datetime | None
    entries: list[GalleryEntry]


class GalleryReads:
    def __init__(
        self, sessions: sessionmaker[Session], crops: CropStore, thumbnails: Thumbnails
    ) -> None:
        self._sessions = sessions
        self._crops = crops
        self._thumbnails = thumbnails

    def entry(self, entry_id: int) -> GalleryEntry:
        with self._sessions() as session:
            entry = session.get(GalleryEntry, entry_id)
        if entry is None:
            raise EntryNotFound(f"gallery entry {entry_id} does not exist")
        return entry

    def crop(self, entry_id: int) -> tuple[GalleryEntry, bytes]:
        """An entry and its stored crop, byte for byte."""
        entry = self.entry(entry_id)
        try:
            return entry, self._crops.get(entry.sha256)
        except FileNotFoundError as error:
            raise CropMissing(
                f"the crop of entry {entry_id} is missing from the data directory"
            ) from error

    def thumbnail(self, entry_id: int, size: ThumbnailSize) -> bytes:
        """A JPEG of the entry's crop fitting inside size x size, from the cache when there."""
        entry = self.entry(entry_id)
        try:
            data = self._thumbnails.get(entry.sha256, size, self._holds)
        except FileNotFoundError as error:
            raise CropMissing(
                f"the crop of entry {entry_id} is missing from the data directory"
            ) from error
        except ImageDecodeError as error:
            raise CropMissing(
                f"the stored crop of entry {entry_id} no longer decodes ({error})"
            ) from error
        if data is None:
            raise EntryNotFound(f"gallery entry {entry_id} was deleted")
        return data

    def _holds(self, sha256: str) -> bool:
        with self._sessions() as session:
            statement = select(GalleryEntry.id).where(GalleryEntry.sha256 == sha256).limit(1)
            return session.scalar(statement) is not None

    def entries(
        self, *, identity: str | None, camera: str | None, after_id: int, limit: int
    ) -> list[GalleryEntry]:
        """Entries by id after ``after_id``, optionally of one identity or camera."""
        statement = select(GalleryEntry).where(GalleryEntry.id > after_id)
        if identity is not None:
            statement = statement.where(GalleryEntry.identity == identity)
        if camera is not None:
            statement = statement.where(GalleryEntry.camera == camera)
        with self._sessions() as session:
            return list(session.scalars(statement.order_by(GalleryEntry.id).limit(limit)).all())

    def identities(self, *, after: str | None, limit: int) -> list[IdentityCounts]:
        """Identities in name order after ``after``, with their entry counts."""
        statement = select(
            GalleryEntry.identity,
            func.count(),
            func.min(GalleryEntry.created_at),
            func.max(GalleryEntry.created_at),
        ).group_by(GalleryEntry.identity)
        if after is not None:
            statement = statement.where(GalleryEntry.identity > after)
        with self._sessions() as session:
            rows = session.execute(statement.order_by(GalleryEntry.identity).limit(limit)).all()
        return [IdentityCounts(row[0], row[1], _aware(row[2]), _aware(row[3])) for row in rows]

    def identity(self, identity: str, *, entry_limit: int) -> IdentityRecord:
        with self._sessions() as session:
            count, first, last, seen_first, seen_last = session.execute(
                select(
                    func.count(),
                    func.min(GalleryEntry.created_at),
                    func.max(GalleryEntry.created_at),
                    func.min(GalleryEntry.captured_at),
                    func.max(GalleryEntry.captured_at),
                ).where(GalleryEntry.identity == identity)
            ).one()
            if not count:
                raise IdentityNotFound(f"identity {identity!r} has no entries")
            cameras = session.scalars(
                select(GalleryEntry.camera)
                .where(GalleryEntry.identity == identity, GalleryEntry.camera.is_not(None))
                .distinct()
                .order_by(GalleryEntry.camera)
            ).all()
            entries = session.scalars(
                select(GalleryEntry)
                .where(GalleryEntry.identity == identity)
                .order_by(GalleryEntry.id)
                .limit(entry_limit)
            ).all()
        return IdentityRecord(
            identity=identity,
            entry_count=count,
            first_enrolled_at=_aware(first),
            last_enrolled_at=_aware(last),
            cameras=[camera for camera in cameras if camera is not None],
            first_captured_at=_aware(seen_first),
            last_captured_at=_aware(seen_last),
            entries=list(entries),
        )


def _aware(value: datetime | str | None) -> datetime | None:
    """Aggregates bypass the column type, so SQLite hands back naive UTC (or text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
