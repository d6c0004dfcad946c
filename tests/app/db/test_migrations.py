"""The ORM models and the Alembic migrations describe the same schema, on both backends."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from service_kit import ServiceHandle
from sqlalchemy import create_engine, inspect, text

from alembic import command
from app.db.engine import alembic_config
from app.db.models import Base

RunModule = Callable[..., subprocess.CompletedProcess[str]]  # the run_module fixture


def test_migrated_database_matches_the_models(
    make_service: Callable[..., ServiceHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_service().settings
    url = settings.resolved_database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The command-line path: env.py reads REID_DATABASE_URL through the settings.
    monkeypatch.setenv("REID_DATABASE_URL", url)
    config = alembic_config(url)
    config.attributes.pop("database_url")
    command.upgrade(config, "head")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            assert diff == []
            tables = set(inspect(connection).get_table_names())
            assert {
                "gallery_entries",
                "evaluation_jobs",
                "site_calibrations",
                "alembic_version",
            } <= tables
            if connection.dialect.name == "sqlite":
                assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        command.downgrade(config, "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_alembic_cli_and_no_self_migration_on_postgresql(
    make_service: Callable[..., ServiceHandle], run_module: RunModule
) -> None:
    service = make_service(auto_migrate=None)  # PostgreSQL default: the entrypoint migrates
    assert service.settings.migrate_on_startup is False
    with pytest.raises(RuntimeError, match="alembic upgrade head"), service.client():
        pass
    result = run_module(
        "alembic",
        "upgrade",
        "head",
        env={"REID_DATABASE_URL": service.settings.resolved_database_url},
    )
    assert result.returncode == 0, result.stderr
    with service.client() as client:
        assert client.get("/ready").status_code == 200
