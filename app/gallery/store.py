"""The gallery's rows: every SQL statement that writes entries or feeds the index.

An entry's embedding is stored as float32 bytes beside its dimension and the
model version that made it; this module is the one place that turns vectors
into rows and rows back into vectors, for the service, its index and
``python -m app.reembed`` alike. Every write appends the entries it touched to
the change log in its own transaction, which is how the other replicas (and this
one, after a restart) learn of it. Bulk reads go through SQLAlchemy Core, not
the ORM: ORM row processing doubled the time of a million-row scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import BigInteger, ColumnElement, Select, any_, bindparam, delete, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import GalleryChange, GalleryEntry
from app.gallery import change_log
from app.gallery.entry_fields import EntryFields
from app.index.vector_index import IdVectorChunks
from app.inference.decoding import DecodedImage

_ID_CHUNK = 1000
_VECTOR_CHUNK = 20_000


class AdmittedCounts(NamedTuple):
    """The effective gallery of a query: identities its filters leave, and their entries,
    as of change-log position ``head``."""

    identities: int
    entries: int
    head: int = 0

    @property
    def entries_per_identity(self) -> float | None:
        return self.entries / self.identities if self.identities else None


class RowState(NamedTuple):
    """This model's rows as of one change-log position."""

    count: int
    max_id: int
    head: int


class EntryLabel(NamedTuple):
    """What a search needs to know about an entry besides its vector.

    A named tuple, not a dataclass: a query builds one per neighbour it examines
    (thousands when filters make it widen), so construction cost counts.
    """

    entry_id: int
    identity: str
    camera: str | None
    captured_at: datetime | None


# A search reads these columns for its candidates and unpacks them by position.
_LABEL_COLUMNS = (
    GalleryEntry.id,
    GalleryEntry.identity,
    GalleryEntry.camera,
    GalleryEntry.captured_at,
)


def vector_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


class EntryStore:
    """Rows of ``gallery_entries`` as seen by one model version."""

    def __init__(self, sessions: sessionmaker[Session], *, model_version: str, dim: int) -> None:
        self.sessions = sessions
        self.model_version = model_version
        self.dim = dim
        self._mine = GalleryEntry.holds(
            model_version
        )  # rows with this model's embedding, in either slot
        self._on_postgres = sessions.kw["bind"].dialect.name == "postgresql"

    # ----------------------------------------------------------------- census
    def census(self) -> dict[str, int]:
        """How many entries hold an embedding of each model version (in either slot)."""
        counts: dict[str, int] = {}
        with self.sessions() as session:
            for column in (GalleryEntry.model_version, GalleryEntry.alt_model_version):
                rows = session.execute(
                    select(column, func.count()).where(column.is_not(None)).group_by(column)
                ).all()
                for version, count in rows:
                    counts[version] = counts.get(version, 0) + int(count)
        return counts

    def state(self) -> RowState:
        """This model's entries (count, max id) and the change log's head, read together.

        One repeatable-read transaction on PostgreSQL, so the counts are the rows exactly
        as of that head. SQLite has one process, whose writers wait for the index lock
        the caller holds.
        """
        with self.sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            head = session.scalar(select(func.max(GalleryChange.seq)))
            count, max_id = session.execute(
                select(func.count(), func.max(GalleryEntry.id)).where(self._mine)
            ).one()
        return RowState(int(count), int(max_id or 0), int(head or 0))

    def ids(self) -> np.ndarray:
        """This model's entry ids, sorted."""
        statement = select(GalleryEntry.id).where(self._mine)
        parts = [
            np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            for rows in self._partitions(statement)
        ]
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, np.int64)

    def vector_chunks(self, ids: np.ndarray | None = None) -> IdVectorChunks:
        """Stream (ids, vectors) of this model's entries, optionally only ``ids``."""
        columns = select(GalleryEntry.id, GalleryEntry.vector_of(self.model_version))
        if ids is None:
            yield from self._decoded(columns.where(self._mine).order_by(GalleryEntry.id))
            return
        for start in range(0, len(ids), _VECTOR_CHUNK):
            part = [int(i) for i in ids[start : start + _VECTOR_CHUNK]]
            yield from self._decoded(columns.where(GalleryEntry.id.in_(part), self._mine))

    def _decoded(self, statement: Select[Any]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for rows in self._partitions(statement):
            ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            yield ids, self.vectors_of(row[1] for row in rows).reshape(len(rows), self.dim)

    def vectors_of(self, blobs: Iterable[bytes]) -> np.ndarray:
        """Stored embeddings back into one (N, dim) float32 array."""
        return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, self.dim)

    def _partitions(self, statement: Select[Any]) -> Iterator[Sequence[Any]]:
        """Stream a column query in chunks (a server-side cursor on PostgreSQL)."""
        with self.sessions() as session:
            result = session.connection().execute(
                statement.execution_options(yield_per=_VECTOR_CHUNK)
            )
            yield from result.partitions()

    def _rows(self, statement: Select[Any]) -> Sequence[Any]:
        with self.sessions() as session:
            return session.connection().execute(statement).all()

    # ----------------------------------------------------------------- search support
    def labels(self, ids: Sequence[int]) -> dict[int, EntryLabel]:
        """Identity, camera and capture time of each entry that still exists."""
        found: dict[int, EntryLabel] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            rows = self._rows(
                select(*_LABEL_COLUMNS).where(self._id_among(ids[start : start + _ID_CHUNK]))
            )
            found.update({row[0]: EntryLabel(*row) for row in rows})
        return found

    def _id_among(self, ids: Sequence[int]) -> ColumnElement[bool]:
        """``id IN (...)``, or on PostgreSQL ``id = ANY(:ids)`` with one array parameter.

        Every query's candidates go through here. With one parameter per id, SQLAlchemy
        renders and PostgreSQL parses a new statement for each candidate count: 0.4 ms
        of a 1.5 ms lookup of 80 labels, measured. SQLite has no arrays.
        """
        if self._on_postgres:
            return GalleryEntry.id == any_(bindparam("ids", list(ids), type_=ARRAY(BigInteger)))
        return GalleryEntry.id.in_(ids)

    def admitted_counts(
        self,
        *,
        exclude_camera: str | None = None,
        captured_after: datetime | None = None,
        captured_before: datetime | None = None,
    ) -> AdmittedCounts:
        """Identities with at least one of this model's entries that these filters admit,
        and how many entries they hold.

        The size of the gallery a query is really compared with, which sets its
        open-set threshold. The rules are a query's (``QueryFilters.admits``): an entry
        without a camera is never the excluded camera's; a time window keeps only
        entries captured inside it. Grouped in a subquery, so PostgreSQL may
        hash-aggregate or walk the covering identity index.
        """
        conditions = [self._mine]
        if exclude_camera is not None:
            conditions.append(
                or_(GalleryEntry.camera.is_(None), GalleryEntry.camera != exclude_camera)
            )
        if captured_after is not None:
            conditions.append(GalleryEntry.captured_at >= captured_after)
        if captured_before is not None:
            conditions.append(GalleryEntry.captured_at <= captured_before)
        per_identity = (
            select(GalleryEntry.identity, func.count().label("entries"))
            .where(*conditions)
            .group_by(GalleryEntry.identity)
            .subquery()
        )
        totals = select(
            func.count(),
            func.coalesce(func.sum(per_identity.c.entries), 0),
            select(func.max(GalleryChange.seq)).scalar_subquery(),  # same snapshot
        )
        with self.sessions() as session:
            identities, entries, head = session.execute(totals.select_from(per_identity)).one()
        return AdmittedCounts(int(identities), int(entries), int(head or 0))

    # ----------------------------------------------------------------- writes
    def holders(self, hashes: Iterable[str]) -> dict[str, GalleryEntry]:
        """The entries already holding any of these image hashes."""
        wanted = list(set(hashes))
        with self.sessions() as session:
            rows = session.scalars(
                select(GalleryEntry).where(GalleryEntry.sha256.in_(wanted))
            ).all()
        return {row.sha256: row for row in rows}

    def referenced_hashes(self, hashes: list[str]) -> set[str]:
        """Which of these image hashes some entry (of any model) refers to."""
        found: set[str] = set()
        for start in range(0, len(hashes), _ID_CHUNK):
            with self.sessions() as session:
                found.update(
                    session.scalars(
                        select(GalleryEntry.sha256).where(
                            GalleryEntry.sha256.in_(hashes[start : start + _ID_CHUNK])
                        )
                    ).all()
                )
        return found

    def new_row(self, fields: EntryFields, image: DecodedImage, vector: np.ndarray) -> GalleryEntry:
        """An unsaved entry for one decoded crop and its embedding by this model."""
        return GalleryEntry(
            identity=fields.identity,
            sha256=image.sha256,
            camera=fields.camera,
            captured_at=fields.captured_at,
            source=fields.source,
            extra=fields.extra,
            image_format=image.image_format,
            width=image.width,
            height=image.height,
            byte_size=len(image.data),
            embedding=vector_bytes(vector),
            embedding_dim=int(vector.shape[0]),
            model_version=self.model_version,
        )

    def insert(self, rows: Sequence[GalleryEntry]) -> tuple[np.ndarray, np.ndarray]:
        """Commit ``rows`` in one transaction; returns their (ids, vectors) for the index."""
        with self.sessions() as session:
            session.add_all(rows)
            session.flush()
            change_log.append(session, (row.id for row in rows))
            session.commit()
        ids = np.array([row.id for row in rows], dtype=np.int64)
        return ids, self.vectors_of(row.embedding for row in rows)

    def delete_entry(self, entry_id: int) -> GalleryEntry | None:
        with self.sessions() as session:
            entry = session.get(GalleryEntry, entry_id)
            if entry is None:
                return None
            session.delete(entry)
            change_log.append(session, [entry_id])
            session.commit()
        return entry

    def delete_identity(self, identity: str) -> list[tuple[int, str]]:
        """Delete every entry of ``identity``; returns their (id, sha256)."""
        with self.sessions() as session:
            rows = session.execute(
                select(GalleryEntry.id, GalleryEntry.sha256).where(
                    GalleryEntry.identity == identity
                )
            ).all()
            if rows:
                session.execute(delete(GalleryEntry).where(GalleryEntry.identity == identity))
                change_log.append(session, (row[0] for row in rows))
                session.commit()
        return [(int(row[0]), str(row[1])) for row in rows]
