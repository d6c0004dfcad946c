"""A GPU index that cannot run must leave the service on CPU FAISS, saying why, never down.

No GPU is needed: the GPU FAISS calls are replaced by ones that fail the way a wheel
without kernels for the GPU fails ("no kernel image is available ..."), with
``gpu_available`` forced true so the service believes a usable GPU is present.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import faiss
import httpx
import numpy as np
import pytest
from service_kit import files, person_jpeg

from app.index import backends
from app.index.backends import Backend
from app.index.gpu_probe import choose_index_device
from app.index.spec import IndexSpec, IndexType
from app.index.vector_index import VectorIndex

DIM = 16
NO_KERNEL = "no kernel image is available for execution on the device"


class FailingAddIDMap(faiss.IndexIDMap):
    """Builds fine, fails on the first add: where a kernel-less wheel first launches a kernel."""

    def add_with_ids(self, x: np.ndarray, ids: np.ndarray) -> None:
        raise RuntimeError(NO_KERNEL)


class WrongNeighboursIDMap(faiss.IndexIDMap):
    """Adds, but stores every vector reversed: the GPU 'works' and returns wrong answers."""

    def add_with_ids(self, x: np.ndarray, ids: np.ndarray) -> None:
        super().add_with_ids(x, ids[::-1].copy())


def _pretend_gpu(
    monkeypatch: pytest.MonkeyPatch, make_inner: type[faiss.IndexIDMap] | None
) -> None:
    """``gpu_available`` true; GPU indexes are CPU ones of ``make_inner``'s kind (None: raise)."""

    def new_gpu_backend(dim: int, spec: IndexSpec, kind: IndexType) -> Backend:
        if make_inner is None:
            raise RuntimeError(NO_KERNEL)
        flat = faiss.IndexFlatIP(dim)
        wrapper = make_inner(flat)
        wrapper.own_fields = True
        flat.this.disown()
        return Backend(wrapper, kind, gpu_resources=object())

    monkeypatch.setattr(backends, "gpu_available", lambda: True)
    monkeypatch.setattr(backends, "new_gpu_backend", new_gpu_backend)


def test_not_requested_keeps_the_spec() -> None:
    spec = IndexSpec(IndexType.FLAT, index_use_gpu=False)
    served, status = choose_index_device(DIM, spec)
    assert served == spec
    assert (status.requested, status.used) == (False, False)


def test_requested_without_a_gpu_serves_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "gpu_available", lambda: False)
    served, status = choose_index_device(DIM, IndexSpec(IndexType.FLAT))
    assert served.index_use_gpu is False
    assert (status.requested, status.used) == (True, False)
    assert "no visible GPU" in status.reason


def test_hnsw_never_asks_for_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_gpu(monkeypatch, faiss.IndexIDMap)
    served, status = choose_index_device(DIM, IndexSpec(IndexType.HNSW))
    assert served.index_use_gpu is False and not status.used
    assert "HNSW" in status.reason


@pytest.mark.parametrize(
    ("inner", "expected"),
    [(None, NO_KERNEL), (FailingAddIDMap, NO_KERNEL), (WrongNeighboursIDMap, "expected [1]")],
    ids=["fails-to-build", "fails-first-add", "wrong-neighbours"],
)
def test_a_gpu_index_that_fails_its_check_falls_back(
    monkeypatch: pytest.MonkeyPatch, inner: type[faiss.IndexIDMap] | None, expected: str
) -> None:
    _pretend_gpu(monkeypatch, inner)
    served, status = choose_index_device(DIM, IndexSpec(IndexType.IVF))
    assert (status.requested, status.used) == (True, False)
    assert expected in status.reason and status.reason.startswith("RuntimeError: ")
    assert served == IndexSpec(IndexType.IVF, index_use_gpu=False)
    assert not VectorIndex.empty(DIM, served).on_gpu


def test_a_gpu_index_that_works_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_gpu(monkeypatch, faiss.IndexIDMap)
    spec = IndexSpec(IndexType.FLAT)
    served, status = choose_index_device(DIM, spec)
    assert served == spec
    assert (status.requested, status.used, status.reason) == (True, True, "")


LAUNCHER = """
import runpy
import sys

from app.index import backends

def new_gpu_backend(dim, spec, kind):
    raise RuntimeError({message!r})

backends.gpu_available = lambda: True
backends.new_gpu_backend = new_gpu_backend
sys.argv = ["app"]
runpy.run_module("app", run_name="__main__", alter_sys=True)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_service_comes_up_on_cpu_faiss_and_says_why(checkpoint: Path, tmp_path: Path) -> None:
    launcher = tmp_path / "launch.py"
    launcher.write_text(textwrap.dedent(LAUNCHER.format(message=NO_KERNEL)), encoding="utf-8")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REID_")}
    env.update(
        {
            "REID_DATA_DIR": str(tmp_path / "data"),
            "REID_MODEL_PATH": str(checkpoint),
            "REID_DEVICE": "cpu",
            "REID_INDEX_USE_GPU": "true",
            "REID_HOST": "127.0.0.1",
            "REID_PORT": str(port),
        }
    )
    process = subprocess.Popen(
        [sys.executable, str(launcher)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"service exited: {process.stdout.read() if process.stdout else ''}")
            try:
                ready = httpx.get(f"{base}/ready", timeout=5)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail("service did not answer within 120 s")
                time.sleep(0.2)
        assert ready.status_code == 200, ready.text
        index = ready.json()["checks"]["index"]
        assert index["on_gpu"] is False
        assert index["gpu"] == {
            "requested": True,
            "used": False,
            "reason": f"RuntimeError: {NO_KERNEL}",
        }
        with httpx.Client(base_url=base, timeout=60) as client:
            images = [person_jpeg(3, 1, shot, seed=5) for shot in range(2)]
            enrolled = client.post("/gallery", data={"identity": "p3"}, files=files("g", *images))
            assert enrolled.status_code == 201, enrolled.text
            query = client.post(
                "/query", files={"image": ("q.jpg", person_jpeg(3, 2, 4, seed=5), "image/jpeg")}
            )
            assert query.status_code == 200
            assert query.json()["results"][0]["identity"] == "p3"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=60)
    assert "serving from CPU FAISS" in output and NO_KERNEL in output
    assert "Traceback" not in output
