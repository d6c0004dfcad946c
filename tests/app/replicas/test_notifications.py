"""NOTIFY wakes a waiting replica at once; a dropped listening connection only delays."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from service_kit import PostgresServer
from sqlalchemy import Engine, text

from app.db.engine import create_db_engine, session_factory, upgrade_to_head
from app.db.notifications import Notifications
from app.gallery import change_log
from app.gallery.change_log import CHANNEL


@pytest.fixture
def engine(postgres: PostgresServer) -> Iterator[Engine]:
    engine = create_db_engine(postgres.fresh_url())
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


def commit_a_change_after(engine: Engine, delay_s: float) -> threading.Thread:
    def commit() -> None:
        time.sleep(delay_s)
        with session_factory(engine)() as session:
            change_log.append(session, [1])
            session.commit()

    thread = threading.Thread(target=commit)
    thread.start()
    return thread


def timed_wait(notifications: Notifications, timeout_s: float) -> float:
    started = time.monotonic()
    notifications.wait(timeout_s)
    return time.monotonic() - started


def test_a_commit_wakes_the_waiting_replica(engine: Engine) -> None:
    notifications = Notifications(engine, CHANNEL)
    try:
        notifications.wait(0.01)  # connects and listens
        writer = commit_a_change_after(engine, 0.2)
        assert timed_wait(notifications, 30) < 10  # woken by the commit, not the timeout
        writer.join()
        # A rolled-back append notifies nobody.
        with session_factory(engine)() as session:
            change_log.append(session, [2])
            session.rollback()
        assert timed_wait(notifications, 0.5) >= 0.45
    finally:
        notifications.close()


def test_a_dropped_connection_is_replaced(engine: Engine) -> None:
    notifications = Notifications(engine, CHANNEL)
    try:
        notifications.wait(0.01)
        with engine.begin() as connection:  # the server ends the listening session
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                    " AND datname = current_database()"
                )
            )
        notifications.wait(0.2)  # notices, and waits out its timeout instead
        notifications.wait(0.01)  # listens again on a fresh connection
        writer = commit_a_change_after(engine, 0.2)
        assert timed_wait(notifications, 30) < 10
        writer.join()
    finally:
        notifications.close()
    assert timed_wait(notifications, 5) < 1  # closed: waits no more
