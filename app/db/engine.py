"""Engine construction and schema migration for SQLite and PostgreSQL.

The service talks to the database synchronously from worker threads: SQLAlchemy's
sync engine over psycopg 3 or sqlite3 is the best-trodden path, and every call
is short compared with a forward pass.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from alembic import command
from app.settings import Settings

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = REPO_ROOT / "alembic.ini"
ALEMBIC_DIR = REPO_ROOT / "alembic"


class DatabaseNotMigratedError(RuntimeError):
    """The schema is behind the code and this process may not migrate it."""


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets queries read while an enrollment writes; foreign keys are off
    # by default in SQLite; busy_timeout turns writer contention into waiting.
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine with the per-backend settings the service relies on."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def wait_for_database(engine: Engine, timeout_s: float) -> None:
    """Retry until the database answers, so a container may start before its database."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return
        except OperationalError as error:
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"database {engine.url.render_as_string(hide_password=True)} is not "
                    f"reachable after {timeout_s:.0f}s: {error.orig}"
                ) from error
            log.warning("database not reachable yet, retrying: %s", error.orig)
            time.sleep(1.0)


def alembic_config(url: str) -> Config:
    """The repository's alembic.ini, pointed at ``url``."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["database_url"] = url
    return config


def upgrade_to_head(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    config = alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_is_current(engine: Engine) -> tuple[bool, str | None, str | None]:
    """(at head?, current revision, head revision)."""
    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    head = script.get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current == head, current, head


def prepare_schema(engine: Engine, *, migrate: bool) -> None:
    """Migrate (when allowed) or insist the schema is already at head."""
    if migrate:
        upgrade_to_head(engine)
        return
    current_ok, current, head = schema_is_current(engine)
    if not current_ok:
        raise DatabaseNotMigratedError(
            f"the database schema is at revision {current or 'none'} but this version needs "
            f"{head}; run `alembic upgrade head` with REID_DATABASE_URL set (or set "
            "REID_AUTO_MIGRATE=true to let the service migrate itself)"
        )


def open_database(settings: Settings) -> Engine:
    """The configured database, reachable and at the schema this code needs.

    The service and ``python -m app.reembed`` must open it the same way: one that
    skipped the wait would fail while its database container is still starting, one
    that skipped the schema check would write rows the code cannot read back.
    """
    engine = create_db_engine(settings.resolved_database_url)
    try:
        wait_for_database(engine, settings.db_connect_timeout_s)
        prepare_schema(engine, migrate=settings.migrate_on_startup)
    except BaseException:
        engine.dispose()
        raise
    return engine
