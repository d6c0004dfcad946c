#!/bin/sh
# Starts the reid API the same way in the image and on a bare host (the tests run it
# there): wait for the database, migrate it, then replace this shell with the server.
set -eu

# The project root (/app in the image, the checkout elsewhere): alembic.ini is here.
cd "$(dirname "$0")/.."

# With arguments, run them instead of the server, e.g.
#   docker compose run --rm --no-deps api python -m app.keys new --role admin --name ops
if [ "$#" -gt 0 ]; then
    exec "$@"
fi

# REID_DB_CONNECT_TIMEOUT_S bounds the whole wait; PGCONNECT_TIMEOUT bounds each
# PostgreSQL attempt, so an unroutable host cannot outlast it.
echo "entrypoint: waiting for the database" >&2
PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}" python docker/wait_for_db.py

echo "entrypoint: migrating the database (alembic upgrade head)" >&2
alembic upgrade head

# ONE server process on purpose (the launcher runs uvicorn with workers=1): the model,
# the FAISS index and the request batcher live in it. More workers would each put a
# copy of the model on the GPU and split the index; throughput comes from batching.
# `exec` makes the server PID 1, so `docker stop` (SIGTERM) reaches it directly.
echo "entrypoint: starting the API" >&2
exec python -m app
