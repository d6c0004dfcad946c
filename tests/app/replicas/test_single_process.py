"""SQLite serves one process: a second service on the same database is refused, clearly."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from live_server import service_environment
from service_kit import ServiceHandle

from app.db.single_process import DatabaseInUse


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_second_process_on_one_sqlite_database_is_refused(
    make_service: Callable[..., ServiceHandle],
) -> None:
    service = make_service()
    with service.client():
        # Another service in this process: refused at start-up, before serving anything.
        with pytest.raises(DatabaseInUse, match="SQLite serves one process"), service.client():
            pass
        # Another process through the launcher: exit 2 with the reason, no traceback.
        settings = service.settings
        env = service_environment(
            REID_DATA_DIR=str(settings.data_dir), REID_DATABASE_URL=settings.resolved_database_url
        )
        launched = subprocess.run(
            [sys.executable, "-m", "app"], env=env, capture_output=True, text=True, timeout=120
        )
        assert launched.returncode == 2
        assert "SQLite serves one process" in launched.stderr
        assert "Traceback" not in launched.stderr
    # Once the first has stopped (even by a crash: the kernel drops the lock), it starts.
    with service.client() as client:
        assert client.get("/ready").status_code == 200
