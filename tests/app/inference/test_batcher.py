"""The dynamic batcher: concurrent requests share forward passes, failures reach everyone."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import torch

from app.inference.batcher import BatcherStoppedError, DynamicBatcher
from app.telemetry import Telemetry


def row_means(batch: torch.Tensor) -> np.ndarray:
    return batch.reshape(batch.shape[0], -1).mean(dim=1, keepdim=True).numpy()


def test_batcher_gathers_concurrent_requests_and_routes_rows_back() -> None:
    sizes: list[int] = []
    threads: set[str] = set()

    def forward(batch: torch.Tensor) -> np.ndarray:
        sizes.append(int(batch.shape[0]))
        threads.add(threading.current_thread().name)
        return row_means(batch)

    batcher = DynamicBatcher(forward, max_batch=8, max_wait_ms=50, telemetry=Telemetry())
    batcher.start()

    async def scenario() -> list[np.ndarray]:
        requests = [torch.full((1, 3, 4, 2), float(i)) for i in range(20)]
        requests.append(torch.arange(11, dtype=torch.float32).view(11, 1, 1, 1) + 100)
        return await asyncio.gather(*(batcher.embed(r) for r in requests))

    try:
        results = asyncio.run(scenario())
    finally:
        batcher.stop()
    for i in range(20):
        assert results[i].shape == (1, 1) and results[i][0, 0] == pytest.approx(i)
    assert results[20][:, 0].tolist() == pytest.approx([100.0 + i for i in range(11)])
    assert sum(sizes) == 31 and max(sizes) <= 8
    assert len(sizes) < 31  # requests really were gathered
    assert threads == {"batcher"}


def test_batcher_failure_reaches_every_request_and_stop_refuses_new_work() -> None:
    def forward(batch: torch.Tensor) -> np.ndarray:
        raise RuntimeError("device lost")

    batcher = DynamicBatcher(forward, max_batch=4, max_wait_ms=20, telemetry=Telemetry())
    batcher.start()

    async def scenario() -> list[object]:
        return await asyncio.gather(
            *(batcher.embed(torch.zeros(1, 3, 2, 2)) for _ in range(3)), return_exceptions=True
        )

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, RuntimeError) and "device lost" in str(o) for o in outcomes)
    batcher.stop()
    with pytest.raises(BatcherStoppedError):
        asyncio.run(batcher.embed(torch.zeros(1, 3, 2, 2)))
