#!/usr/bin/env bash
# The test suite runs every API test against PostgreSQL as well as SQLite.
# On the development and CI machines a local cluster exists but may be stopped;
# start it if so. Elsewhere, point REID_TEST_POSTGRES_URL at a server you own.
set -euo pipefail
if [ -n "${REID_TEST_POSTGRES_URL:-}" ]; then exit 0; fi
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then exit 0; fi
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done
fi
echo "PostgreSQL is not reachable on 127.0.0.1:5432; set REID_TEST_POSTGRES_URL" >&2
exit 1
