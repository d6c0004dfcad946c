"""The effective gallery's counts: counted once per gallery state, never another state's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from service_kit import PostgresServer
from sqlalchemy import Engine, delete, event
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import create_db_engine, session_factory, upgrade_to_head
from app.db.models import GalleryEntry
from app.gallery import change_log
from app.gallery.admitted import AdmittedCountCache
from app.gallery.store import AdmittedCounts, EntryStore

DIM = 4


@pytest.fixture(params=["sqlite", "postgresql"])
def engines(
    request: pytest.FixtureRequest, postgres: PostgresServer, tmp_path: Path
) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database: this replica's and another's."""
    url = postgres.fresh_url() if request.param == "postgresql" else f"sqlite:///{tmp_path}/g.db"
    mine, other = create_db_engine(url), create_db_engine(url)
    upgrade_to_head(mine)
    yield mine, other
    mine.dispose()
    other.dispose()


def enroll(sessions: sessionmaker[Session], identity: str, camera: str) -> int:
    """One entry, logged in its own transaction as the service's writers log theirs."""
    with sessions() as session:
        entry = GalleryEntry(
            identity=identity,
            sha256=np.random.default_rng().bytes(32).hex(),
            camera=camera,
            image_format="jpeg",
            width=64,
            height=128,
            byte_size=1,
            embedding=np.ones(DIM, np.float32).tobytes(),
            embedding_dim=DIM,
            model_version="v1",
        )
        session.add(entry)
        session.flush()
        change_log.append(session, [entry.id])
        session.commit()
        return entry.id


def counting(engine: Engine) -> list[str]:
    """The grouped counting statements run on ``engine`` from now on."""
    seen: list[str] = []

    def record(*args: Any) -> None:  # (conn, cursor, statement, parameters, context, many)
        if "GROUP BY" in args[2].upper():
            seen.append(args[2])

    event.listen(engine, "after_cursor_execute", record)
    return seen


def test_counts_once_per_gallery_state_and_filter(engines: tuple[Engine, Engine]) -> None:
    mine, other = engines
    sessions, theirs = session_factory(mine), session_factory(other)
    cache = AdmittedCountCache(EntryStore(sessions, model_version="v1", dim=DIM))
    enroll(sessions, "a", "cam-0")
    enroll(sessions, "a", "cam-1")
    enroll(sessions, "b", "cam-0")
    counted = counting(mine)

    first = cache.counts()
    assert first[:2] == (2, 3)
    assert cache.counts() == first and cache.counts(exclude_camera="cam-0")[:2] == (1, 1)
    assert cache.counts(exclude_camera="cam-0")[:2] == (1, 1)
    assert len(counted) == 2  # one per filter: the repeats were not counted again

    # Another replica's write moves the head: the next query counts the new state.
    gone = enroll(theirs, "c", "cam-2")
    assert cache.counts() == AdmittedCounts(3, 4, first.head + 1)
    with theirs() as session:
        session.execute(delete(GalleryEntry).where(GalleryEntry.id == gone))
        change_log.append(session, [gone])
        session.commit()
    assert cache.counts()[:2] == (2, 3)
    assert cache.counts(exclude_camera="cam-0")[:2] == (1, 1)
    assert len(counted) == 5
