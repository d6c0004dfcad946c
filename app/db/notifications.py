"""Waking on PostgreSQL ``NOTIFY``: a replica learns of another's commit within milliseconds.

One dedicated connection per process, outside the pool (a pooled connection
would be handed to queries while it listens). A notification is only a hint:
the caller reads the change log after every wake-up, and wakes after
``timeout_s`` anyway, so a notification lost to a dropped connection only delays.
On SQLite (one process) there is nobody else to hear from, so waiting is sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger(__name__)


class Notifications:
    def __init__(self, engine: Engine, channel: str) -> None:
        self._engine = engine
        self._channel = channel
        self._listens = engine.dialect.name == "postgresql"
        self._connection: Any = None
        self._closed = threading.Event()

    def wait(self, timeout_s: float) -> None:
        """Return on a notification, or after ``timeout_s``, or at once once closed."""
        if not self._listens or self._closed.is_set():
            self._closed.wait(timeout_s)
            return
        started = time.monotonic()
        try:
            connection = self._connection or self._listen()
            for _ in connection.notifies(timeout=timeout_s, stop_after=1):
                pass
        except Exception as error:  # a dropped connection: reconnect on the next wait
            if not self._closed.is_set():
                log.warning("change notifications interrupted, polling until back: %s", error)
            self._drop()
            self._closed.wait(max(timeout_s - (time.monotonic() - started), 0.0))

    def _listen(self) -> Any:
        pooled = self._engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # never returned to the pool
        connection.autocommit = True
        connection.execute(f'LISTEN "{self._channel}"')
        self._connection = connection
        return connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # already broken; nothing more to release
                log.debug("closing the notification connection failed", exc_info=True)

    def close(self) -> None:
        self._closed.set()
        self._drop()
