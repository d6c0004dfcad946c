"""A real uvicorn subprocess on a free loopback port, for tests that speak real HTTP."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any REID_ setting, plus ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("REID_")}
    env.update(settings)
    return env


def launch(env: dict[str, str], port: int, *, launcher: str = "app") -> subprocess.Popen:
    """Start the service (``python -m app``, or plain ``uvicorn app.main:app``); don't wait."""
    command = (
        [sys.executable, "-m", "app"]
        if launcher == "app"
        else [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
    )
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_until_up(process: subprocess.Popen, port: int) -> str:
    """Wait until /health answers; returns the base URL (fails the test if it never does)."""
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"server exited early:\n{process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"server did not start within {START_TIMEOUT_S} s")
        time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    """Kill the process if it still runs, and reap it."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


@contextlib.contextmanager
def live_server(
    env: dict[str, str], port: int, *, launcher: str = "app"
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the service and wait until /health answers; kill it afterwards if the test
    has not stopped it."""
    process = launch(env, port, launcher=launcher)
    try:
        yield wait_until_up(process, port), process
    finally:
        stop(process)
