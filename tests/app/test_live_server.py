"""The real thing: a uvicorn subprocess on a free port, spoken to over TCP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_kit import PostgresServer, files, person_jpeg


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def live_server(
    backend: str, postgres: PostgresServer, checkpoint: Path, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    port = free_port()
    data_dir = tmp_path / "data"
    url = postgres.fresh_url() if backend == "postgresql" else ""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REID_")}
    env.update(
        {
            "REID_DATA_DIR": str(data_dir),
            "REID_MODEL_PATH": str(checkpoint),
            "REID_DEVICE": "cpu",
            "REID_MAX_BODY_BYTES": str(1024 * 1024),
            "REID_HOST": "127.0.0.1",
            "REID_PORT": str(port),
        }
    )
    if url:
        env["REID_DATABASE_URL"] = url
        env["REID_AUTO_MIGRATE"] = "true"
    # SQLite runs through our launcher, PostgreSQL through plain uvicorn: both must work.
    command = (
        [sys.executable, "-m", "app"]
        if backend == "sqlite"
        else [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
    )
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"server exited early:\n{process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("server did not start within 120 s")
        time.sleep(0.2)
    try:
        yield base, process, data_dir
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_live_flow(live_server: tuple[str, subprocess.Popen, Path]) -> None:
    base, process, data_dir = live_server
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
    assert (data_dir / "index.snapshot").exists()  # written on graceful shutdown
    assert "Traceback" not in output
