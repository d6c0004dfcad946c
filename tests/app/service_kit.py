"""Helpers for the service tests: images, databases and service handles."""

from __future__ import annotations

import contextlib
import io
import math
import os
import select
import shutil
import socket
import struct
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.engine import make_url

import model  # noqa: F401  (torchvision shim before anything imports it)
from app.inference.embedder import Embedder, load_embedder
from app.main import create_app
from app.settings import Settings
from model.evaluation.calibration import Calibration
from training.data.synthetic import render_person

LOCAL_CLIENT = ("127.0.0.1", 50000)
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


# ------------------------------------------------------------------ images
def person_jpeg(pid: int, camid: int = 1, shot: int = 0, *, seed: int = 0) -> bytes:
    """A synthetic crop of identity ``pid``; distinct bytes per (pid, camid, shot)."""
    image = render_person(pid, camid, np.random.default_rng([seed, pid, camid, shot]), seed=seed)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def encode(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def pixel_bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A single-colour PNG of width x height pixels that is only a few hundred KB.

    Written by hand (one zlib stream of zero rows) so building it never
    allocates the 1.2 GB image it describes.
    """

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    row = b"\x00" + b"\x00" * (width * 3)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def files(name: str, *images: bytes, field_name: str = "images") -> list[tuple[str, Any]]:
    return [
        (field_name, (f"{name}_{index}.jpg", data, "image/jpeg"))
        for index, data in enumerate(images)
    ]


def unique(prefix: str = "id") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ------------------------------------------------------------------ open set
KNOWN_TAIL_RATE = 10.0


def known_calibration() -> Calibration:
    """A calibration with a closed form: one identity scores ``>= T`` with chance
    ``p(T) = 0.5 exp(-10 T)`` (T >= 0), and identities are independent (N_eff = N)."""
    return Calibration(
        gallery_identities=1,
        thresholds={},
        survival_scores=(-1.0, 0.0),
        survival=(1.0, 0.5),
        tail_start=0.0,
        tail_probability=0.5,
        tail_rate=KNOWN_TAIL_RATE,
        tail_curvature=0.0,
    )


def known_threshold(fpir: float, identities: float) -> float:
    """Solves ``1 - (1 - p(T))^N = fpir`` for the known calibration, independently of it."""
    p = 1.0 - (1.0 - fpir) ** (1.0 / identities)
    return math.log(0.5 / p) / KNOWN_TAIL_RATE


def known_rate(score: float, identities: int) -> float:
    """The FPIR the known calibration gives a threshold at ``score`` (>= 0)."""
    return 1.0 - (1.0 - 0.5 * math.exp(-KNOWN_TAIL_RATE * score)) ** identities


# ------------------------------------------------------------------ databases
class PostgresServer:
    """One throw-away database ``reid_test_<random>`` per test session, dropped at the end.

    Each service gets its own schema in it (``search_path`` set through the URL), which
    isolates tests exactly like separate databases do, without the checkpoint that
    every CREATE/DROP DATABASE costs PostgreSQL (0.5-3 s each here).
    """

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.base = parsed.set(drivername="postgresql+psycopg")
        self.admin_dsn = self.base.set(
            drivername="postgresql", database=parsed.database or "postgres"
        ).render_as_string(hide_password=False)
        self.database: str | None = None

    def _ensure_database(self) -> str:
        if self.database is None:
            name = f"reid_test_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{name}"')
            self.database = name
        return self.database

    def fresh_url(self) -> str:
        """A URL for an empty schema of the session's database."""
        database = self._ensure_database()
        schema = f"s_{uuid.uuid4().hex[:12]}"
        url = self.base.set(database=database)
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
        return url.set(query={"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )

    def drop_all(self) -> None:
        if self.database is None:
            return
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.database,),
            )
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}"')
        self.database = None


class DatabaseRelay:
    """A TCP relay to the PostgreSQL server, for a service whose database must go away.

    ``cut()`` is a real outage for everything connected through the relay: its open
    connections are closed and new ones are refused, since nothing listens on its port
    any more, while the server itself and every other test's connections carry on.
    ``DatabaseRelay(url, port=cut_relay.port)`` brings the database back on the same port.
    """

    _POLL_S = 0.05

    def __init__(self, url: str, *, port: int = 0) -> None:
        parsed = make_url(url)
        self._target = (parsed.host or "127.0.0.1", parsed.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self._listener.getsockname()[1]
        self.url = parsed.set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False
        )
        self._cut = threading.Event()
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._relaying: list[threading.Thread] = []
        self._accepting.start()

    def cut(self) -> None:
        """Returns once every relayed connection is closed and the port refuses new ones."""
        self._cut.set()
        self._accepting.join()
        for thread in self._relaying:
            thread.join()

    def _accept(self) -> None:
        # Polling, not a blocking accept(): only this thread ever touches the listener,
        # so closing it cannot race an accept() running in another thread.
        with self._listener:
            while not self._cut.is_set():
                if not select.select([self._listener], [], [], self._POLL_S)[0]:
                    continue
                try:
                    client, _ = self._listener.accept()
                except OSError:  # the client gave up between select() and accept()
                    continue
                thread = threading.Thread(target=self._relay, args=(client,), daemon=True)
                self._relaying.append(thread)
                thread.start()

    def _relay(self, client: socket.socket) -> None:
        with (
            contextlib.suppress(OSError),
            client,
            socket.create_connection(self._target) as upstream,
        ):
            peer = {client: upstream, upstream: client}
            while not self._cut.is_set():
                for ready in select.select(list(peer), [], [], self._POLL_S)[0]:
                    data = ready.recv(1 << 16)
                    if not data:
                        return
                    peer[ready].sendall(data)


def postgres_server_url() -> str:
    return os.environ.get("REID_TEST_POSTGRES_URL") or DEFAULT_POSTGRES


# ------------------------------------------------------------------ services
@dataclass
class LoadedModels:
    """Each checkpoint loaded once per test session instead of once per app start.

    Every app still runs its own lifespan, database and index; only the
    (read-only, eval-mode) network is shared, handed to ``create_app``. The
    live-server tests load checkpoints in their own process, the uncached way.
    """

    loaded: dict[tuple[Any, ...], Embedder] = field(default_factory=dict)

    def for_settings(self, settings: Settings) -> Embedder:
        key = (settings.model_path, settings.device, settings.amp)
        if key not in self.loaded:
            self.loaded[key] = load_embedder(settings)
        return self.loaded[key]


@dataclass
class ServiceHandle:
    """One service's configuration: start it (again) as often as a test needs."""

    settings: Settings
    models: LoadedModels

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def with_settings(self, **changes: Any) -> ServiceHandle:
        return ServiceHandle(self.settings.model_copy(update=changes), self.models)

    @contextlib.contextmanager
    def client(self, **client_options: Any) -> Iterator[TestClient]:
        """A started app (lifespan run) behind a TestClient; stopped on exit."""
        options = {"client": LOCAL_CLIENT, **client_options}
        app = create_app(self.settings, embedder=self.models.for_settings(self.settings))
        with TestClient(app, **options) as client:
            yield client


def make_settings(
    data_dir: Path, database_url: str, checkpoint: Path | None, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "model_path": checkpoint,
        "device": "cpu",
        "auto_migrate": True,
        "batch_max_wait_ms": 2.0,
        "decode_threads": 2,
        "maintenance_interval_s": 3600.0,
        "snapshot_interval_s": 3600.0,
        **overrides,
    }
    return Settings(**values)


def copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the service's one error shape, with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert "Traceback" not in response.text
    return body["error"]


def entries_of(client: TestClient, identity: str) -> list[dict[str, Any]]:
    response = client.get("/gallery", params={"identity": identity})
    assert response.status_code == 200
    return response.json()["items"]
