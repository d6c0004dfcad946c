"""Two embedding slots per entry: how two model versions serve one gallery side by side.

An entry holds its primary embedding (``model_version``, ``embedding``) and may hold a
second (``alt_model_version``, ``alt_embedding``). A replica of version V uses whichever
slot holds V, so during an upgrade the old and the new replicas both find every entry,
and retiring the old version empties its slots.

Filling: an entry that lacks V's embedding gets one computed from its stored crop
(by the replicas of V in the background, or by ``python -m app.reembed``). The rows
are claimed with ``FOR UPDATE SKIP LOCKED`` while their crops are embedded, so several
replicas of V share the work instead of repeating it, and a row being filled cannot
change under the writer. V goes into a slot whose version no running replica serves:
the primary one first (a plain model switch, with the old replicas stopped, replaces
the old embeddings), else the second; an entry whose two slots both serve running
replicas (a third version arriving mid-upgrade) is left alone and stays lacking,
which ``/ready`` shows.
Every fill and retirement appends to the change log, so every replica follows it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from sqlalchemy import func, not_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import GalleryEntry
from app.gallery import change_log


class StoredCrop(NamedTuple):
    entry_id: int
    sha256: str


class Filled(NamedTuple):
    """One claimed batch: the last id looked at, what got an embedding, what could not."""

    last_id: int
    written: int
    unusable: list[int]
    crowded: int  # both slots serve running replicas: left alone


# Embeds the stored crops of a batch: ({entry id: vector}, [ids whose crop is unusable]).
EmbedCrops = Callable[[Sequence[StoredCrop]], tuple[dict[int, np.ndarray], list[int]]]


class EmbeddingSlots:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        model_version: str,
        serving_versions: Callable[[], set[str]],
    ) -> None:
        self._sessions = sessions
        self.model_version = model_version
        self._serving_versions = serving_versions
        self._lacks = not_(GalleryEntry.holds(model_version))

    def lacking_census(self) -> dict[str, int]:
        """Entries without this model's embedding, counted by their primary version."""
        with self._sessions() as session:
            rows = session.execute(
                select(GalleryEntry.model_version, func.count())
                .where(self._lacks)
                .group_by(GalleryEntry.model_version)
            ).all()
        return {version: int(count) for version, count in rows}

    def fill(self, embed: EmbedCrops, *, after_id: int, limit: int) -> Filled | None:
        """Give the next ``limit`` lacking entries (by id, after ``after_id``) this model's
        embedding, in one transaction; None when none is left after ``after_id``."""
        version = self.model_version
        with self._sessions() as session:
            rows = session.execute(
                select(
                    GalleryEntry.id,
                    GalleryEntry.sha256,
                    GalleryEntry.model_version,
                    GalleryEntry.alt_model_version,
                )
                .where(self._lacks, GalleryEntry.id > after_id)
                .order_by(GalleryEntry.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return None
            vectors, unusable = embed([StoredCrop(int(row[0]), str(row[1])) for row in rows])
            serving = self._serving_versions() | {version}
            written, crowded = [], 0
            for entry_id, _sha, primary, alt in rows:
                vector = vectors.get(int(entry_id))
                if vector is None:
                    continue
                blob = np.asarray(vector, dtype=np.float32).tobytes()
                if primary not in serving:
                    values = {
                        "model_version": version,
                        "embedding": blob,
                        "embedding_dim": int(vector.shape[0]),
                    }
                elif alt is None or alt not in serving:
                    values = {"alt_model_version": version, "alt_embedding": blob}
                else:
                    crowded += 1
                    continue
                session.execute(
                    update(GalleryEntry).where(GalleryEntry.id == entry_id).values(**values)
                )
                written.append(int(entry_id))
            change_log.append(session, written)
            session.commit()
        return Filled(int(rows[-1][0]), len(written), unusable, crowded)

    def retire(self, version: str) -> tuple[int, int]:
        """Drop ``version``'s embeddings where the entry holds another; returns (dropped,
        kept: entries whose only embedding is of ``version``)."""
        with self._sessions() as session:
            dropped = session.execute(
                select(GalleryEntry.id).where(
                    or_(
                        GalleryEntry.alt_model_version == version,
                        (GalleryEntry.model_version == version)
                        & GalleryEntry.alt_model_version.is_not(None),
                    )
                )
            ).scalars()
            ids = [int(entry_id) for entry_id in dropped]
            # The second slot moves into the first where the first held the retired version.
            session.execute(
                update(GalleryEntry)
                .where(
                    GalleryEntry.model_version == version,
                    GalleryEntry.alt_model_version.is_not(None),
                )
                .values(
                    model_version=GalleryEntry.alt_model_version,
                    embedding=GalleryEntry.alt_embedding,
                    embedding_dim=func.length(GalleryEntry.alt_embedding) / 4,
                )
                .execution_options(synchronize_session=False)
            )
            session.execute(  # now a copy of the first slot, or the retired version
                update(GalleryEntry)
                .where(
                    or_(
                        GalleryEntry.alt_model_version == version,
                        GalleryEntry.alt_model_version == GalleryEntry.model_version,
                    )
                )
                .values(alt_model_version=None, alt_embedding=None)
                .execution_options(synchronize_session=False)
            )
            kept = session.scalar(select(func.count()).where(GalleryEntry.model_version == version))
            change_log.append(session, ids)
            session.commit()
        return len(ids), int(kept or 0)
