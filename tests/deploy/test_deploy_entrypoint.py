"""docker/entrypoint.sh outside a container: wait, migrate, serve, stop, and fail clearly.

The script runs the same way on a bare host as in the image (it finds the project
from its own path), so these tests start the real service on a free local port,
against SQLite and against a fresh database on the local PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
HEALTHCHECK = REPO / "docker" / "healthcheck.py"
ADMIN_URL = os.environ.get(
    "REID_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# A guard against hanging CI, not a performance claim: start-up imports torch and
# builds a ResNet-50 on two shared cores.
START_GUARD_S = 180.0

Env = Callable[..., dict[str, str]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_GUARD_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"entrypoint exited with {process.returncode}:\n{log.read_text()}")
        if _status(f"http://127.0.0.1:{port}/ready") == 200:
            return
        time.sleep(0.5)
    pytest.fail(f"/ready never answered 200:\n{log.read_text()}")


def _healthcheck(port: int, path: str, clean_env: Env) -> int:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), path],
        env=clean_env(REID_PORT=str(port)),
        capture_output=True,
        check=False,
    ).returncode


def _serve_and_stop(env: dict[str, str], tmp_path: Path, clean_env: Env) -> str:
    """Run the entrypoint until /ready is 200, probe it, SIGTERM it; return its log."""
    port = int(env["REID_PORT"])
    log = tmp_path / "entrypoint.log"
    with log.open("wb") as sink:
        # cwd elsewhere on purpose: the script must find alembic.ini by itself.
        process = subprocess.Popen(
            ["sh", str(ENTRYPOINT)], cwd=tmp_path, env=env, stdout=sink, stderr=sink
        )
    try:
        _wait_ready(process, port, log)
        # `exec`: the server replaced the shell, so it is the process Docker signals.
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:3] == [b"-m", b"app"]
        assert _healthcheck(port, "/health", clean_env) == 0
        assert _healthcheck(port, "/ready", clean_env) == 0
        assert _healthcheck(port, "/no-such-page", clean_env) == 1
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises SIGTERM on itself (Docker: 143).
        assert process.wait(timeout=60) in (0, -signal.SIGTERM), log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert "alembic upgrade head" in output
    assert "Application shutdown complete" in output
    return output


def _service_env(clean_env: Env, tmp_path: Path, **overrides: str) -> dict[str, str]:
    settings = {
        "REID_PORT": str(_free_port()),
        "REID_HOST": "127.0.0.1",
        "REID_DATA_DIR": str(tmp_path / "data"),
        "REID_DEVICE": "cpu",
        "REID_DB_CONNECT_TIMEOUT_S": "20",
    }
    return clean_env(**(settings | overrides))


def _head_revision() -> str:
    config = Config(str(REPO / "alembic.ini"))
    return ScriptDirectory.from_config(config).get_current_head()


def _current_revision(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on the test PostgreSQL server, dropped afterwards."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"reid_deploy_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_serves_on_sqlite(tmp_path: Path, clean_env: Env) -> None:
    env = _service_env(clean_env, tmp_path)
    _serve_and_stop(env, tmp_path, clean_env)
    database = tmp_path / "data" / "reid.db"
    assert _current_revision(f"sqlite:///{database}") == _head_revision()


def test_serves_on_postgresql(tmp_path: Path, clean_env: Env, postgres_database: str) -> None:
    env = _service_env(clean_env, tmp_path, REID_DATABASE_URL=postgres_database)
    output = _serve_and_stop(env, tmp_path, clean_env)
    # The service does not migrate PostgreSQL itself: the entrypoint did.
    assert _current_revision(postgres_database) == _head_revision()
    assert "database is reachable" in output


def test_fails_clearly_when_the_database_is_unreachable(tmp_path: Path, clean_env: Env) -> None:
    port = _free_port()  # nothing listens there
    env = _service_env(
        clean_env,
        tmp_path,
        REID_DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{port}/reid",
        REID_DB_CONNECT_TIMEOUT_S="1",
    )
    result = subprocess.run(
        ["sh", str(ENTRYPOINT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert f"127.0.0.1:{port}/reid is not reachable after 1s" in result.stderr
    assert "REID_DATABASE_URL" in result.stderr
    assert "alembic upgrade head" not in result.stderr  # it stopped before migrating


def test_arguments_run_instead_of_the_server(tmp_path: Path, clean_env: Env) -> None:
    # Unreachable database: proves a command skips the wait and the migration.
    env = _service_env(
        clean_env, tmp_path, REID_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/x"
    )
    command = ["python", "-m", "app.keys", "new", "--role", "read", "--name", "cam-1"]
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "REID_API_KEYS='[{" in result.stdout and "entrypoint:" not in result.stderr


def test_fails_clearly_on_an_invalid_setting(tmp_path: Path, clean_env: Env) -> None:
    env = _service_env(clean_env, tmp_path, REID_DATABASE_URL="mysql://reid@db/reid")
    result = subprocess.run(
        ["sh", str(ENTRYPOINT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "invalid REID_* configuration" in result.stderr
    assert "REID_DATABASE_URL must be" in result.stderr
