"""Entrypoint step 1: block until the service's database answers, or fail clearly.

It reads the service's own settings and reuses the service's engine and retry loop,
so it waits for exactly the database the app will open (REID_DATABASE_URL, else the
SQLite file under REID_DATA_DIR) for at most REID_DB_CONNECT_TIMEOUT_S seconds.
Exit status: 0 reachable, 1 not reachable in time, 2 invalid configuration.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from app.db.engine import create_db_engine, wait_for_database
from app.settings import Settings


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"entrypoint: invalid REID_* configuration:\n{error}", file=sys.stderr)
        return 2
    url = settings.resolved_database_url
    shown = make_url(url).render_as_string(hide_password=True)
    print(
        f"entrypoint: database {shown}, waiting up to {settings.db_connect_timeout_s:g} s",
        file=sys.stderr,
    )
    engine = create_db_engine(url)
    try:
        wait_for_database(engine, settings.db_connect_timeout_s)
    except RuntimeError as error:
        print(
            f"entrypoint: {error}\nentrypoint: is the database running, and are "
            "REID_DATABASE_URL and REID_DB_CONNECT_TIMEOUT_S right?",
            file=sys.stderr,
        )
        return 1
    finally:
        engine.dispose()
    print("entrypoint: database is reachable", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
