"""What replicas decide about each other: change-log retention, and the jobs of the dead."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from service_kit import PostgresServer
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import create_db_engine, session_factory, upgrade_to_head
from app.db.models import EvaluationJob, Replica
from app.gallery import change_log
from app.gallery.change_log import ChangeLog
from app.gallery.replicas import ReplicaRegistry
from app.jobs.job_store import JobStore


@pytest.fixture
def sessions(postgres: PostgresServer) -> Iterator[sessionmaker[Session]]:
    engine = create_db_engine(postgres.fresh_url())
    upgrade_to_head(engine)
    yield session_factory(engine)
    engine.dispose()


def silence(sessions: sessionmaker[Session], replica_id: str, seconds: float) -> None:
    with sessions() as session:
        session.execute(
            update(Replica)
            .where(Replica.replica_id == replica_id)
            .values(heartbeat_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )
        session.commit()


def test_retention_keeps_what_each_live_replica_needs(sessions: sessionmaker[Session]) -> None:
    log = ChangeLog(sessions)
    with sessions() as session:
        change_log.append(session, range(1, 101))
        session.commit()
    assert (log.oldest(), log.head()) == (1, 100)
    behind = ReplicaRegistry(sessions, replica_id="behind", model_version="v")
    ahead = ReplicaRegistry(sessions, replica_id="ahead", model_version="v")
    behind.register(applied=90, snapshot=40)  # its next start replays from its snapshot
    ahead.register(applied=100, snapshot=None)
    assert ahead.retention_floor(forget_after_s=3600) == 40
    log.prune(40)
    assert log.oldest() == 41

    # A replica silent past the forget bound no longer holds the log back ...
    silence(sessions, "behind", 7200)
    assert ahead.retention_floor(forget_after_s=3600) == 100
    log.prune(100)
    # ... and the newest change is always kept: it names the head.
    assert (log.oldest(), log.head()) == (100, 100)
    assert ahead.silent(3600) == {"behind"}

    # A forgotten replica that comes back re-registers with its first heartbeat.
    ahead.forget({"behind"})
    behind.heartbeat(applied=100, snapshot=100)
    assert ahead.retention_floor(forget_after_s=3600) == 100


def test_jobs_of_a_silent_replica_are_failed_once_by_concurrent_replicas(
    sessions: sessionmaker[Session],
) -> None:
    dead = JobStore(sessions, replica_id="dead")
    for n in range(20):
        dead.create(f"{n:032x}", "labelled_queries", model_version="v", params={})
    dead.start(f"{0:032x}")
    alive = JobStore(sessions, replica_id="alive")
    alive.create("f" * 32, "labelled_queries", model_version="v", params={})

    failed: list[int] = []
    sweepers = [
        threading.Thread(target=lambda: failed.append(alive.fail_of({"dead"}, "replica died")))
        for _ in range(4)
    ]
    for sweeper in sweepers:
        sweeper.start()
    for sweeper in sweepers:
        sweeper.join()
    assert sum(failed) == 20  # every job of the dead replica, each exactly once

    with sessions() as session:
        jobs = {job.id: job for job in session.query(EvaluationJob).all()}
    assert all(
        job.status == "failed" and job.error_message == "replica died"
        for job in jobs.values()
        if job.replica_id == "dead"
    )
    assert jobs["f" * 32].status == "queued"  # the living replica's job is untouched
    # A replica that was only thought dead finds its job gone and does not run it.
    assert dead.start(f"{1:032x}") is False
