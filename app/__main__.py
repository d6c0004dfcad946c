"""Launcher: ``python -m app`` serves on REID_HOST:REID_PORT, refusing unsafe exposure.

With no API keys configured, binding anything but a loopback address would
hand the gallery (biometric data) to the whole network, so it is refused
(exit 2) unless REID_ALLOW_UNAUTHENTICATED=true says it is deliberate. One
worker process: the index and the batcher live in the process, and one
process per GPU is what the batcher wants. On SQLite, a second process on the same
database is refused here (exit 2) with the reason, before the model is loaded.
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from app.api.middleware import is_loopback
from app.db.single_process import DatabaseInUse, SingleProcessLock
from app.settings import Settings


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"invalid configuration:\n{error}", file=sys.stderr)
        return 2
    if not settings.auth_enabled and not is_loopback(settings.host):
        if not settings.allow_unauthenticated:
            print(
                f"refusing to serve on {settings.host}:{settings.port} without API keys: anyone "
                "who can reach it could read and change the gallery.\n"
                "  - create keys:  python -m app.keys new --role write --name NAME\n"
                "    and set REID_API_KEYS to the printed JSON list, or\n"
                "  - bind to 127.0.0.1 (REID_HOST), or\n"
                "  - set REID_ALLOW_UNAUTHENTICATED=true if the network is closed on purpose.",
                file=sys.stderr,
            )
            return 2
        print("WARNING: serving WITHOUT authentication on a non-loopback address", file=sys.stderr)
    if settings.sqlite_file is not None:
        probe = SingleProcessLock(settings.sqlite_file)
        try:
            probe.acquire()
        except DatabaseInUse as error:
            print(f"refusing to start: {error}", file=sys.stderr)
            return 2
        probe.release()  # the service takes it for good at start-up
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        workers=1,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
