"""The real thing: a uvicorn subprocess on a free port, spoken to over TCP."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import free_port, live_server, service_environment
from service_kit import PostgresServer, files, person_jpeg


@pytest.fixture
def live_service(
    backend: str, postgres: PostgresServer, checkpoint: Path, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    port = free_port()
    data_dir = tmp_path / "data"
    env = service_environment(
        REID_DATA_DIR=str(data_dir),
        REID_MODEL_PATH=str(checkpoint),
        REID_DEVICE="cpu",
        REID_MAX_BODY_BYTES=str(1024 * 1024),
        REID_HOST="127.0.0.1",
        REID_PORT=str(port),
    )
    if backend == "postgresql":
        env["REID_DATABASE_URL"] = postgres.fresh_url()
        env["REID_AUTO_MIGRATE"] = "true"
    # SQLite runs through our launcher, PostgreSQL through plain uvicorn: both must work.
    launcher = "app" if backend == "sqlite" else "uvicorn"
    with live_server(env, port, launcher=launcher) as (base, process):
        yield base, process, data_dir


def test_live_flow(live_service: tuple[str, subprocess.Popen, Path]) -> None:
    base, process, data_dir = live_service
    with httpx.Client(base_url=base, timeout=60) as client:
        assert client.get("/ready").status_code == 200
        for pid in (1, 2):
            images = [person_jpeg(pid, 1, shot, seed=21) for shot in range(2)]
            response = client.post(
                "/gallery", data={"identity": f"live-{pid}"}, files=files("l", *images)
            )
            assert response.status_code == 201, response.text
        query = client.post(
            "/query",
            data={"top_k": "5"},
            files={"image": ("q.jpg", person_jpeg(1, 2, 7, seed=21), "image/jpeg")},
        )
        assert query.status_code == 200
        assert {r["identity"] for r in query.json()["results"]} == {"live-1", "live-2"}

        def chunks() -> Iterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="images"; filename="x.jpg"\r\n\r\n'
            for _ in range(8):
                yield bytes(256 * 1024)

        streamed = client.post(
            "/gallery",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert streamed.request.headers.get("transfer-encoding") == "chunked"
        assert streamed.status_code == 413
        assert streamed.json()["error"]["code"] == "body_too_large"
        docs = client.get("/openapi.json").json()
        assert "/gallery" in docs["paths"] and "/query" in docs["paths"]
        assert client.get("/docs").status_code == 200
        assert "reid_http_request_duration_seconds" in client.get("/metrics").text

    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    # uvicorn finishes the graceful shutdown, then re-raises the signal it caught.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert list((data_dir / "snapshots").glob("*.snapshot"))  # written on graceful shutdown
    assert "Traceback" not in output
