"""Shared by the service benchmarks: a checkpoint, JPEG crops, a live server process."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import torch

import model  # noqa: F401  (torchvision shim)
from model.checkpoint import ModelCard, load_checkpoint, save_checkpoint, untrained_model
from model.compute import ComputeSettings
from model.config import ModelConfig
from model.network import ReIDNet
from training.data.synthetic import render_person

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def make_checkpoint(directory: Path, arch: str) -> Path:
    """An untrained (deterministic) checkpoint: speed does not depend on weight values."""
    target = directory / f"{arch}-untrained"
    if not (target / "model.safetensors").exists():
        network, _ = untrained_model(ModelConfig(arch=arch))
        save_checkpoint(network, target, training_data={"kind": "benchmark"}, metrics={})
    return target


@dataclass(frozen=True)
class BenchModel:
    """The network a service benchmark serves over HTTP and also times raw, in-process."""

    work: Path
    checkpoint: Path
    network: ReIDNet
    card: ModelCard
    amp: str
    compute: ComputeSettings

    def server_settings(self, data_dir: Path, **settings: str) -> dict[str, str]:
        """REID_* settings of a benchmarked server; ``settings`` adds to or overrides them.

        CPU with the same REID_AMP as the raw references it is compared with, and
        warnings only, so that per-request log lines are not part of what is timed.
        """
        return {
            "REID_MODEL_PATH": str(self.checkpoint),
            "REID_DATA_DIR": str(data_dir),
            "REID_DEVICE": "cpu",
            "REID_AMP": self.amp,
            "REID_LOG_LEVEL": "warning",
            **settings,
        }


def prepare_model(work_dir: Path | None, arch: str, prefix: str, amp: str) -> BenchModel:
    """Load the checkpoint the server will load too, run as the server will run it, so
    that raw and HTTP time one network."""
    work = work_dir or Path(tempfile.mkdtemp(prefix=prefix))
    checkpoint = make_checkpoint(work, arch)
    network, card = load_checkpoint(checkpoint)
    compute = ComputeSettings.resolve("cpu", amp, amp)
    compute.prepare(network).eval()
    return BenchModel(work, checkpoint, network, card, amp, compute)


def person_jpegs(count: int, *, offset: int = 0) -> list[bytes]:
    """``count`` distinct synthetic crops (distinct bytes, so none is deduplicated)."""
    crops = []
    for number in range(offset, offset + count):
        rng = np.random.default_rng([number])
        image = render_person(1 + number % 500, 1 + number % 6, rng)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        crops.append(buffer.getvalue())
    return crops


def entry_row(number: int, identity: str, vector: np.ndarray, version: str) -> dict[str, Any]:
    """One gallery row as the benchmarks bulk-load it: a random vector, no crop on disk."""
    return {
        "identity": identity,
        "sha256": f"{number:064x}",
        "camera": f"cam-{number % 6}",
        "image_format": "jpeg",
        "width": 64,
        "height": 128,
        "byte_size": 0,
        "embedding": vector.tobytes(),
        "embedding_dim": int(vector.shape[0]),
        "model_version": version,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """``python -m app`` in a subprocess, with the given REID_* settings."""

    def __init__(self, settings: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REID_")}
        env.update(settings)
        env.update({"REID_HOST": "127.0.0.1", "REID_PORT": str(self.port)})
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app"], env=env, cwd=REPO, stdout=self._log, stderr=self._log
        )

    def wait_ready(self, timeout_s: float = 3600.0) -> float:
        """Seconds from process start until /ready answers 200."""
        deadline = self.started + timeout_s
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base_url}/ready", timeout=30).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("server not ready in time")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> float:
        """Graceful stop (SIGTERM, writes the index snapshot); returns seconds taken."""
        started = time.perf_counter()
        self.process.terminate()
        self.process.wait(timeout=3600)
        self._log.close()
        return time.perf_counter() - started


def load_average() -> float:
    return os.getloadavg()[0]


def warm_up(bench: BenchModel, batch_size: int, batches: int = 6) -> None:
    """Run a young process's forward passes until they reach steady speed.

    Measured on this VM: a fresh process's first forward passes run 2-3x slower
    (fresh memory pages fault expensively until the allocator reuses its blocks),
    so every raw timing here comes after this warm-up, as the server is warmed
    by requests before it is timed.
    """
    inputs = bench.compute.to_device(torch.randn(batch_size, 3, *bench.network.config.input_size))
    with torch.inference_mode(), bench.compute.autocast():
        for _ in range(batches):
            bench.network.embed(inputs)


def in_worker_thread(function: Callable[..., T], *args: Any) -> T:
    """Call ``function`` on a fresh thread, as the service calls the network and FAISS.

    On this shared, oversubscribed VM a forward pass called from the main thread ran
    up to 1.7x slower than the same call from a worker thread (OpenMP teams behave
    differently under contention), so raw references are measured both ways or, as
    here, the way the service runs them.
    """
    result: list[T] = []
    worker = threading.Thread(target=lambda: result.append(function(*args)))
    worker.start()
    worker.join()
    if not result:
        raise RuntimeError(f"{function.__name__} failed in its worker thread")
    return result[0]
