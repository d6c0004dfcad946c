"""Deleting entries and erasing identities (the right to erasure).

The order mirrors enrollment's: the rows are deleted and committed, then the
vectors leave the index, then the crop files and their cached thumbnails are
removed. A search resolves its candidates against the rows, so a deletion is
effective as soon as it is committed; a file left by a crash is removed by the
orphan sweep.
"""

from __future__ import annotations

from app.db.models import GalleryEntry
from app.gallery.crops import CropStore
from app.gallery.errors import EntryNotFound, IdentityNotFound
from app.gallery.live_index import LiveIndex
from app.gallery.store import EntryStore
from app.gallery.thumbnails import Thumbnails
from app.telemetry import Telemetry


class Removal:
    def __init__(
        self,
        *,
        store: EntryStore,
        live: LiveIndex,
        crops: CropStore,
        thumbnails: Thumbnails,
        telemetry: Telemetry,
    ) -> None:
        self._store = store
        self._live = live
        self._crops = crops
        self._thumbnails = thumbnails
        self._telemetry = telemetry

    def delete_entry(self, entry_id: int) -> GalleryEntry:
        """Delete one entry's row, vector, crop and thumbnails; returns the deleted row."""
        with self._live.lock:
            entry = self._store.delete_entry(entry_id)
            if entry is None:
                raise EntryNotFound(f"gallery entry {entry_id} does not exist")
            self._live.remove([entry_id])
        self._crops.delete([entry.sha256])
        self._thumbnails.delete([entry.sha256])
        self._telemetry.deleted.inc()
        return entry

    def erase_identity(self, identity: str) -> int:
        """Delete every entry, vector, crop and thumbnail of ``identity``; returns the count."""
        with self._live.lock:
            rows = self._store.delete_identity(identity)
            if not rows:
                raise IdentityNotFound(f"identity {identity!r} has no entries")
            self._live.remove(entry_id for entry_id, _ in rows)
        self._crops.delete(sha for _, sha in rows)
        self._thumbnails.delete(sha for _, sha in rows)
        self._telemetry.deleted.inc(len(rows))
        return len(rows)
