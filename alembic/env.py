"""Alembic environment: the database comes from the service's own settings.

``alembic upgrade head`` migrates the database named by REID_DATABASE_URL (or
the default SQLite file under REID_DATA_DIR). The service calls the same
migrations in-process, passing its open connection in ``config.attributes``.

On PostgreSQL the migration holds an advisory lock until it commits, so replicas
that start together (``docker compose up --scale api=3``) migrate one at a time:
the first upgrades, the others wait and then find the schema at head.
"""

from __future__ import annotations

from logging.config import fileConfig

from sqlalchemy import Connection, text

from alembic import context
from app.db.engine import create_db_engine
from app.db.models import Base
from app.settings import Settings

config = context.config
target_metadata = Base.metadata
_MIGRATION_LOCK = 0x7265696473636865  # any constant: ASCII "reidsche"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        context.run_migrations()


def run_migrations_offline() -> None:
    url = config.attributes.get("database_url") or Settings().resolved_database_url
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = config.attributes.get("database_url") or Settings().resolved_database_url
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
