"""The gallery: database rows (the truth), the FAISS index (derived) and stored crops.

Ordering rules that keep the three consistent through crashes:

* enroll: crop file written -> row committed -> vector added to the index;
* delete: row deleted and committed -> vector removed -> crop file removed;
* start-up: snapshot loaded only if its watermark matches the database, else a
  rebuild; then a reconcile (ids in the database but not the index are added,
  ids in the index but not the database removed), so a row committed just
  before a crash is searchable after restart.

Writes hold one lock from commit to index update, so a reader of "database
state vs index state" (/ready) never sees the gap between the two. All methods
here are blocking; the routes call them from worker threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.crops import CropStore
from app.errors import ApiError
from app.images import DecodedImage
from app.orm import GalleryEntry
from app.snapshot import SnapshotError, Watermark, load_snapshot, read_header, write_snapshot
from app.telemetry import Telemetry
from app.vector_index import IdVectorChunks, IndexSpec, VectorIndex

log = logging.getLogger(__name__)

_ID_CHUNK = 1000
_VECTOR_CHUNK = 20_000
INITIAL_NEIGHBOURS = 64
NEIGHBOUR_FACTOR = 8
WIDEN_FACTOR = 4


@dataclass(frozen=True)
class EntryFields:
    """What the client says about the crops of one enrollment request."""

    identity: str
    camera: str | None = None
    captured_at: datetime | None = None
    source: str | None = None
    extra: dict[str, Any] | None = None


@dataclass(frozen=True)
class QueryFilters:
    camera: str | None = None
    exclude_same_camera: bool = False
    min_score: float | None = None
    captured_after: datetime | None = None
    captured_before: datetime | None = None

    @property
    def has_time_window(self) -> bool:
        return self.captured_after is not None or self.captured_before is not None


@dataclass(frozen=True)
class IdentityMatch:
    identity: str
    score: float
    entry_id: int
    camera: str | None
    matches: int


@dataclass
class StartupReport:
    source: str = "empty"
    reason: str = ""
    added: int = 0
    removed: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


# Both steps of a search (the candidates, then the chosen identities' entries) read
# these columns and unpack them by position: one tuple keeps the two steps in step.
_MATCH_COLUMNS = (
    GalleryEntry.id,
    GalleryEntry.identity,
    GalleryEntry.camera,
    GalleryEntry.captured_at,
)


@dataclass(frozen=True)
class _Candidate:
    identity: str
    camera: str | None
    captured_at: datetime | None


class Gallery:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        model_version: str,
        dim: int,
        spec: IndexSpec,
        crops: CropStore,
        telemetry: Telemetry,
        snapshot_path: Any,
    ) -> None:
        self._sessions = sessions
        self.model_version = model_version
        self.dim = dim
        self.spec = spec
        self.crops = crops
        self._telemetry = telemetry
        self._snapshot_path = snapshot_path
        self._write_lock = threading.RLock()
        self._rebuild_lock = threading.Lock()
        self.index = VectorIndex.empty(dim, spec)
        self.foreign_versions: dict[str, int] = {}
        self.startup = StartupReport()
        self._changes_since_snapshot = 0

    # ================================================================ model versions
    def version_census(self) -> dict[str, int]:
        """Entry count per model version in the database."""
        with self._sessions() as session:
            rows = session.execute(
                select(GalleryEntry.model_version, func.count()).group_by(
                    GalleryEntry.model_version
                )
            ).all()
        return {version: count for version, count in rows}

    def refresh_versions(self) -> dict[str, int]:
        """Re-read which other model versions the database holds; reconcile when that changes."""
        census = self.version_census()
        foreign = {v: n for v, n in census.items() if v != self.model_version}
        cleared = bool(self.foreign_versions) and not foreign
        self.foreign_versions = foreign
        if cleared:  # e.g. `python -m app.reembed` ran while we were up
            self.reconcile()
        return census

    def mismatch_message(self) -> str:
        held = ", ".join(f"{n} from {v}" for v, n in sorted(self.foreign_versions.items()))
        return (
            f"the gallery holds embeddings from another model ({held}) but the loaded model is "
            f"{self.model_version}; embeddings of two models cannot be compared. Either run "
            "`python -m app.reembed` (re-embeds every stored crop with the loaded model), or "
            "set REID_MODEL_PATH to the checkpoint that enrolled them."
        )

    def require_compatible(self) -> None:
        if self.foreign_versions:
            raise ApiError(
                409,
                "model_version_mismatch",
                self.mismatch_message(),
                {"loaded": self.model_version, "gallery": self.foreign_versions},
            )

    # ================================================================ index lifecycle
    def db_state(self) -> tuple[int, int]:
        """(count, max id) of this model's entries in the database."""
        with self._sessions() as session:
            count, max_id = session.execute(
                select(func.count(), func.max(GalleryEntry.id)).where(
                    GalleryEntry.model_version == self.model_version
                )
            ).one()
        return int(count), int(max_id or 0)

    def current_watermark(self) -> Watermark:
        count, max_id = self.db_state()
        return Watermark(
            model_version=self.model_version,
            dim=self.dim,
            structure=self.spec.structure(),
            count=count,
            max_id=max_id,
        )

    def open(self) -> StartupReport:
        """Start-up: versions census, snapshot or rebuild, then reconcile."""
        started = time.perf_counter()
        self.refresh_versions()
        report = StartupReport()
        expected = self.current_watermark()
        index: VectorIndex | None = None
        if self._snapshot_path.exists():
            try:
                header = read_header(self._snapshot_path)
                if header.watermark != expected:
                    raise SnapshotError(
                        f"snapshot watermark {header.watermark} does not match the database "
                        f"{expected}"
                    )
                index, _ = load_snapshot(self._snapshot_path, self.spec)
                report.source = "snapshot"
            except SnapshotError as error:
                report.reason = str(error)
                log.warning("index snapshot not used, rebuilding from the database: %s", error)
        else:
            report.reason = "no snapshot"
        if index is None:
            index = VectorIndex.build(self.dim, self.spec, self._vector_chunks())
            report.source = "rebuild"
            self._changes_since_snapshot += 1  # replace the unusable snapshot soon
        with self._write_lock:
            self.index = index
            report.added, report.removed = self.reconcile()
        report.seconds = time.perf_counter() - started
        report.details = {"entries": self.index.count, "index_type": self.index.effective_type}
        self._telemetry.gallery_entries.set(self.index.count)
        self.startup = report
        log.info(
            "index ready from %s in %.2fs: %d entries (%s); reconcile added %d, removed %d",
            report.source,
            report.seconds,
            self.index.count,
            self.index.effective_type,
            report.added,
            report.removed,
        )
        return report

    def _vector_chunks(self, ids: np.ndarray | None = None) -> IdVectorChunks:
        """Stream (ids, vectors) of this model's entries, optionally only ``ids``."""
        if ids is not None:
            for start in range(0, len(ids), _VECTOR_CHUNK):
                part = [int(i) for i in ids[start : start + _VECTOR_CHUNK]]
                for rows in self._chunks(
                    select(GalleryEntry.id, GalleryEntry.embedding).where(
                        GalleryEntry.id.in_(part),
                        GalleryEntry.model_version == self.model_version,
                    )
                ):
                    yield self._decode_rows(rows)
            return
        for rows in self._chunks(
            select(GalleryEntry.id, GalleryEntry.embedding)
            .where(GalleryEntry.model_version == self.model_version)
            .order_by(GalleryEntry.id)
        ):
            yield self._decode_rows(rows)

    def _chunks(self, statement: Any) -> Iterator[Sequence[Any]]:
        """Stream a column query in chunks (server-side cursor on PostgreSQL).

        Core, not the ORM: ORM row processing doubled the time of a million-row scan.
        """
        with self._sessions() as session:
            result = session.connection().execute(
                statement.execution_options(yield_per=_VECTOR_CHUNK)
            )
            yield from result.partitions()

    def _decode_rows(self, rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
        return ids, vectors.reshape(len(rows), self.dim)

    def _db_ids(self) -> np.ndarray:
        statement = select(GalleryEntry.id).where(GalleryEntry.model_version == self.model_version)
        parts = [
            np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            for rows in self._chunks(statement)
        ]
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, np.int64)

    def _rows(self, statement: Any) -> Sequence[Any]:
        """Run a column query through Core: no ORM row processing (it dominates at 1M rows)."""
        with self._sessions() as session:
            return session.connection().execute(statement).all()

    def reconcile(self) -> tuple[int, int]:
        """Make the index hold exactly this model's database rows; returns (added, removed)."""
        with self._write_lock:
            db_ids = self._db_ids()
            index_ids = self.index.ids()
            missing = np.setdiff1d(db_ids, index_ids, assume_unique=True)
            extra = np.setdiff1d(index_ids, db_ids, assume_unique=True)
            if len(extra):
                self.index.remove(int(i) for i in extra)
            for ids, vectors in self._vector_chunks(missing):
                self.index.add(ids, vectors)
            changed = len(missing) + len(extra)
            self._changes_since_snapshot += changed
            self._telemetry.gallery_entries.set(self.index.count)
        if changed:
            log.warning(
                "reconciled index with database: added %d, removed %d", *map(len, (missing, extra))
            )
        return len(missing), len(extra)

    def in_step(self) -> dict[str, Any]:
        """Compare database and index cheaply (count and highest id)."""
        with self._write_lock:
            count, max_id = self.db_state()
            ids = self.index.ids()
            index_max = int(ids[-1]) if len(ids) else 0
        return {
            "ok": count == len(ids) and max_id == index_max,
            "db_entries": count,
            "index_entries": len(ids),
            "db_max_id": max_id,
            "index_max_id": index_max,
            "index_type": self.index.effective_type,
            "tombstones": self.index.tombstone_count,
            "on_gpu": self.index.on_gpu,
        }

    def rebuild(self) -> None:
        """Build a fresh index from the database and swap it in (compaction, IVF training)."""
        with self._rebuild_lock:
            started = time.perf_counter()
            fresh = VectorIndex.build(self.dim, self.spec, self._vector_chunks())
            with self._write_lock:
                self.index = fresh
                self._changes_since_snapshot += 1
                self.reconcile()  # rows written while the build ran
            log.info(
                "index rebuilt in %.2fs: %d entries (%s)",
                time.perf_counter() - started,
                fresh.count,
                fresh.effective_type,
            )

    def maybe_rebuild(self) -> bool:
        if self.index.needs_compaction or self.index.needs_training:
            self.rebuild()
            return True
        return False

    def write_snapshot(self, *, force: bool = False) -> bool:
        """Persist the index if it changed since the last snapshot."""
        with self._write_lock:
            if not force and self._changes_since_snapshot == 0:
                return False
            if self.foreign_versions:
                return False  # the index is not the gallery; don't persist a partial view
            write_snapshot(self._snapshot_path, self.index, self.model_version)
            self._changes_since_snapshot = 0
        return True

    # ================================================================ enrollment
    def find_existing(
        self, identity: str, images: Sequence[DecodedImage]
    ) -> dict[str, GalleryEntry]:
        """Entries already holding these bytes; 409 if another identity holds any of them."""
        hashes = list({image.sha256 for image in images})
        with self._sessions() as session:
            rows = session.scalars(
                select(GalleryEntry).where(GalleryEntry.sha256.in_(hashes))
            ).all()
        existing = {row.sha256: row for row in rows}
        for image in images:
            holder = existing.get(image.sha256)
            if holder is not None and holder.identity != identity:
                raise ApiError(
                    409,
                    "duplicate_image",
                    f"file #{image.index + 1} ({image.filename!r}) is already enrolled as "
                    f"identity {holder.identity!r} (entry {holder.id}); the same image cannot "
                    "belong to two identities. Delete that entry first if it was wrong.",
                    {
                        "filename": image.filename,
                        "index": image.index,
                        "holder_identity": holder.identity,
                        "entry_id": holder.id,
                    },
                )
        return existing

    def enroll(
        self,
        fields: EntryFields,
        images: Sequence[DecodedImage],
        embeddings: dict[str, np.ndarray],
    ) -> list[tuple[GalleryEntry, bool]]:
        """Store new crops (``embeddings`` keyed by sha256) all-or-nothing.

        Returns (entry, created) per image in request order. A concurrent
        enrollment of the same bytes is resolved by the unique constraint:
        the loser re-reads and answers as for a repeat.
        """
        written: list[str] = []
        try:
            for sha, image in {image.sha256: image for image in images}.items():
                if sha in embeddings and self.crops.put(sha, image.data):
                    written.append(sha)
            for _attempt in range(3):
                existing = self.find_existing(fields.identity, images)
                try:
                    created = self._insert(fields, images, embeddings, existing)
                except IntegrityError:
                    continue
                return self._in_request_order(images, existing, created)
            raise ApiError(
                409, "conflict", "the gallery changed while enrolling; retry the request"
            )
        except OSError as error:
            self._forget_unreferenced(written)
            raise ApiError(
                507,
                "storage_error",
                f"the crop could not be stored in the data directory: {error.strerror or error}",
            ) from error
        except BaseException:
            self._forget_unreferenced(written)
            raise

    def _insert(
        self,
        fields: EntryFields,
        images: Sequence[DecodedImage],
        embeddings: dict[str, np.ndarray],
        existing: dict[str, GalleryEntry],
    ) -> dict[str, GalleryEntry]:
        pending: dict[str, GalleryEntry] = {}
        for image in images:
            if image.sha256 in existing or image.sha256 in pending:
                continue
            if image.sha256 not in embeddings:  # deleted since we found it
                raise ApiError(
                    409, "conflict", "the gallery changed while enrolling; retry the request"
                )
            vector = np.asarray(embeddings[image.sha256], dtype=np.float32)
            pending[image.sha256] = GalleryEntry(
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
                embedding=vector.tobytes(),
                embedding_dim=int(vector.shape[0]),
                model_version=self.model_version,
            )
        if not pending:
            return {}
        with self._write_lock:
            # A racing request's cleanup may have removed a crop we found present;
            # under the lock (cleanups take it too) make sure every file exists.
            data = {image.sha256: image.data for image in images}
            for sha in pending:
                self.crops.put(sha, data[sha])
            with self._sessions() as session:
                session.add_all(pending.values())
                session.commit()
            rows = list(pending.values())
            self.index.add(
                np.array([row.id for row in rows], dtype=np.int64),
                np.stack([np.frombuffer(row.embedding, dtype=np.float32) for row in rows]),
            )
            self._changes_since_snapshot += len(rows)
            self._telemetry.gallery_entries.set(self.index.count)
        self._telemetry.enrolled.inc(len(rows))
        return pending

    @staticmethod
    def _in_request_order(
        images: Sequence[DecodedImage],
        existing: dict[str, GalleryEntry],
        created: dict[str, GalleryEntry],
    ) -> list[tuple[GalleryEntry, bool]]:
        answered: set[str] = set()
        result = []
        for image in images:
            if image.sha256 in created and image.sha256 not in answered:
                result.append((created[image.sha256], True))
            else:
                result.append((existing.get(image.sha256) or created[image.sha256], False))
            answered.add(image.sha256)
        return result

    def _forget_unreferenced(self, hashes: Sequence[str]) -> None:
        """Remove crops this request wrote if no committed row refers to them."""
        if not hashes:
            return
        with self._write_lock:
            referenced = self.referenced_hashes(list(hashes))
            self.crops.delete(sha for sha in hashes if sha not in referenced)

    def referenced_hashes(self, hashes: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(hashes), _ID_CHUNK):
            with self._sessions() as session:
                found.update(
                    session.scalars(
                        select(GalleryEntry.sha256).where(
                            GalleryEntry.sha256.in_(hashes[start : start + _ID_CHUNK])
                        )
                    ).all()
                )
        return found

    # ================================================================ deletion
    def delete_entry(self, entry_id: int) -> GalleryEntry | None:
        with self._write_lock:
            with self._sessions() as session:
                entry = session.get(GalleryEntry, entry_id)
                if entry is None:
                    return None
                session.delete(entry)
                session.commit()
            self.index.remove([entry_id])
            self._changes_since_snapshot += 1
            self._telemetry.gallery_entries.set(self.index.count)
        self.crops.delete([entry.sha256])
        self._telemetry.deleted.inc()
        return entry

    def erase_identity(self, identity: str) -> int:
        """Delete every entry, vector and crop of ``identity``; returns the entry count."""
        with self._write_lock:
            with self._sessions() as session:
                rows = session.execute(
                    select(GalleryEntry.id, GalleryEntry.sha256).where(
                        GalleryEntry.identity == identity
                    )
                ).all()
                if not rows:
                    return 0
                session.execute(delete(GalleryEntry).where(GalleryEntry.identity == identity))
                session.commit()
            self.index.remove(row[0] for row in rows)
            self._changes_since_snapshot += len(rows)
            self._telemetry.gallery_entries.set(self.index.count)
        self.crops.delete(row[1] for row in rows)
        self._telemetry.deleted.inc(len(rows))
        return len(rows)

    # ================================================================ search
    def search(self, query: np.ndarray, top_k: int, filters: QueryFilters) -> list[IdentityMatch]:
        """Rank identities for one embedding.

        FAISS gives nearest entries; filters drop some of them, so the search
        over-fetches and widens (x4) until ``top_k`` identities survive, the
        scores fall below ``min_score``, or the gallery is exhausted. The
        surviving identities are then scored exactly from their stored
        embeddings, which also counts how many of each identity's entries match.
        """
        started = time.perf_counter()
        total = self.index.count
        candidates: dict[int, _Candidate] = {}
        chosen: list[str] = []
        k = min(total, max(INITIAL_NEIGHBOURS, top_k * NEIGHBOUR_FACTOR))
        while k > 0:
            scores, ids = self.index.search(query, k)
            unseen = [int(i) for i in ids if int(i) not in candidates]
            candidates.update(self._candidates(unseen))
            chosen = self._best_identities(scores, ids, candidates, filters, top_k)
            exhausted = len(ids) < k or k >= total
            below_floor = (
                filters.min_score is not None and len(scores) and scores[-1] < filters.min_score
            )
            if len(chosen) >= top_k or exhausted or below_floor:
                break
            k = min(total, k * WIDEN_FACTOR)
        matches = self._score_identities(query, chosen, filters)
        self._telemetry.search_seconds.observe(time.perf_counter() - started)
        return matches[:top_k]

    def _candidates(self, ids: list[int]) -> dict[int, _Candidate]:
        found: dict[int, _Candidate] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            rows = self._rows(
                select(*_MATCH_COLUMNS).where(GalleryEntry.id.in_(ids[start : start + _ID_CHUNK]))
            )
            found.update({row[0]: _Candidate(row[1], row[2], row[3]) for row in rows})
        return found

    @staticmethod
    def _passes(camera: str | None, captured_at: datetime | None, filters: QueryFilters) -> bool:
        if filters.exclude_same_camera and camera is not None and camera == filters.camera:
            return False
        if filters.has_time_window:
            if captured_at is None:
                return False
            if filters.captured_after is not None and captured_at < filters.captured_after:
                return False
            if filters.captured_before is not None and captured_at > filters.captured_before:
                return False
        return True

    def _best_identities(
        self,
        scores: np.ndarray,
        ids: np.ndarray,
        candidates: dict[int, _Candidate],
        filters: QueryFilters,
        top_k: int,
    ) -> list[str]:
        chosen: list[str] = []
        for score, entry_id in zip(scores.tolist(), ids.tolist(), strict=True):
            if filters.min_score is not None and score < filters.min_score:
                break
            candidate = candidates.get(entry_id)
            if candidate is None:  # deleted since the search
                continue
            if not self._passes(candidate.camera, candidate.captured_at, filters):
                continue
            if candidate.identity not in chosen:
                chosen.append(candidate.identity)
                if len(chosen) >= top_k:
                    break
        return chosen

    def _score_identities(
        self, query: np.ndarray, identities: list[str], filters: QueryFilters
    ) -> list[IdentityMatch]:
        if not identities:
            return []
        rows = self._rows(
            select(*_MATCH_COLUMNS, GalleryEntry.embedding, GalleryEntry.model_version).where(
                GalleryEntry.identity.in_(identities)
            )
        )
        # The version is checked here, not in SQL: with one version per gallery the
        # planner could otherwise prefer the (useless) model_version index to the
        # identity index and scan the whole table.
        rows = [
            row
            for row in rows
            if row[5] == self.model_version and self._passes(row[2], row[3], filters)
        ]
        if not rows:
            return []
        vectors = np.frombuffer(b"".join(row[4] for row in rows), dtype=np.float32)
        scores = vectors.reshape(len(rows), self.dim) @ query.astype(np.float32)
        best: dict[str, IdentityMatch] = {}
        for row, score in zip(rows, scores.tolist(), strict=True):
            if filters.min_score is not None and score < filters.min_score:
                continue
            current = best.get(row[1])
            count = (current.matches if current else 0) + 1
            if current is None or score > current.score:
                best[row[1]] = IdentityMatch(row[1], score, row[0], row[2], count)
            else:
                best[row[1]] = IdentityMatch(
                    current.identity, current.score, current.entry_id, current.camera, count
                )
        return sorted(best.values(), key=lambda match: (-match.score, match.entry_id))

    # ================================================================ reads
    def get_entry(self, entry_id: int) -> GalleryEntry | None:
        with self._sessions() as session:
            return session.get(GalleryEntry, entry_id)

    def list_entries(
        self, *, identity: str | None, camera: str | None, after_id: int, limit: int
    ) -> list[GalleryEntry]:
        statement = select(GalleryEntry).where(GalleryEntry.id > after_id)
        if identity is not None:
            statement = statement.where(GalleryEntry.identity == identity)
        if camera is not None:
            statement = statement.where(GalleryEntry.camera == camera)
        with self._sessions() as session:
            return list(session.scalars(statement.order_by(GalleryEntry.id).limit(limit)).all())

    def list_identities(self, *, after: str | None, limit: int) -> list[dict[str, Any]]:
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
        return [
            {
                "identity": row[0],
                "entry_count": row[1],
                "first_enrolled_at": _aware(row[2]),
                "last_enrolled_at": _aware(row[3]),
            }
            for row in rows
        ]

    def identity_summary(self, identity: str, *, entry_limit: int) -> dict[str, Any] | None:
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
                return None
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
        return {
            "identity": identity,
            "entry_count": count,
            "cameras": list(cameras),
            "first_enrolled_at": _aware(first),
            "last_enrolled_at": _aware(last),
            "first_captured_at": _aware(seen_first),
            "last_captured_at": _aware(seen_last),
            "entries": list(entries),
        }

    def iter_embeddings(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """This model's (ids, vectors), for evaluation against the live gallery."""
        yield from self._vector_chunks()

    def identities_of(self, ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        return {
            entry_id: (candidate.identity, candidate.camera)
            for entry_id, candidate in self._candidates(list(ids)).items()
        }


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates bypass the column type, so SQLite hands back naive UTC (or text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
