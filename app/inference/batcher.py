"""Dynamic batching: many concurrent requests, one forward pass.

Requests put their preprocessed crops on a queue and await a future. One worker
thread takes the first waiting request, then keeps gathering until the batch
holds ``max_batch`` crops or ``max_wait_ms`` has passed since it started
gathering (Triton's max_queue_delay), runs one forward, and hands each request
its rows. A lone request pays at most ``max_wait_ms``; under load every forward
is full. The network is only ever touched by this thread, so no lock is needed
around it and the event loop never blocks on inference.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from app.telemetry import Telemetry

log = logging.getLogger(__name__)


class BatcherStoppedError(RuntimeError):
    """The service is shutting down; the request was not run."""


@dataclass
class _Request:
    inputs: torch.Tensor
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop
    enqueued_at: float = field(default_factory=time.perf_counter)

    @property
    def rows(self) -> int:
        return int(self.inputs.shape[0])


def _resolve(request: _Request, result: np.ndarray | BaseException) -> None:
    def deliver() -> None:
        if request.future.done():  # the client went away
            return
        if isinstance(result, BaseException):
            request.future.set_exception(result)
        else:
            request.future.set_result(result)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        request.loop.call_soon_threadsafe(deliver)


class DynamicBatcher:
    def __init__(
        self,
        forward: Callable[[torch.Tensor], np.ndarray],
        *,
        max_batch: int,
        max_wait_ms: float,
        telemetry: Telemetry,
    ) -> None:
        self._forward = forward
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._telemetry = telemetry
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._stopped = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the forward in flight, fail everything still queued, end the thread."""
        if self._stopped:
            return
        self._stopped = True
        self._queue.put(None)
        self._thread.join()
        while True:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending is not None:
                _resolve(pending, BatcherStoppedError("the service is shutting down"))

    async def embed(self, inputs: torch.Tensor) -> np.ndarray:
        """Embed (N, 3, H, W) crops, N of any size; returns (N, D) float32."""
        if self._stopped:
            raise BatcherStoppedError("the service is shutting down")
        loop = asyncio.get_running_loop()
        chunks = torch.split(inputs, self.max_batch) if inputs.shape[0] else (inputs,)
        futures = []
        for chunk in chunks:
            future: asyncio.Future[np.ndarray] = loop.create_future()
            self._queue.put(_Request(chunk, future, loop))
            futures.append(future)
        parts = await asyncio.gather(*futures)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _gather(self, first: _Request) -> tuple[list[_Request], _Request | None, bool]:
        """Collect a batch starting with ``first``; returns (batch, carried over, stop?)."""
        batch = [first]
        rows = first.rows
        deadline = time.perf_counter() + self.max_wait_s
        while rows < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is None:
                return batch, None, True
            if rows + item.rows > self.max_batch:
                return batch, item, False
            batch.append(item)
            rows += item.rows
        return batch, None, False

    def _run(self) -> None:
        carried: _Request | None = None
        while True:
            first = carried if carried is not None else self._queue.get()
            if first is None:
                return
            batch, carried, stop = self._gather(first)
            self._run_batch([request for request in batch if not request.future.done()])
            if stop:
                if carried is not None:
                    _resolve(carried, BatcherStoppedError("the service is shutting down"))
                return

    def _run_batch(self, batch: list[_Request]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        for request in batch:
            self._telemetry.batch_wait_seconds.observe(started - request.enqueued_at)
        try:
            inputs = batch[0].inputs if len(batch) == 1 else torch.cat([r.inputs for r in batch])
            embeddings = self._forward(inputs)
        except Exception as error:  # a failed forward must fail its requests, not the thread
            log.exception("forward pass failed for a batch of %d requests", len(batch))
            for request in batch:
                _resolve(request, error)
            return
        self._telemetry.forward_seconds.observe(time.perf_counter() - started)
        self._telemetry.batch_size.observe(int(inputs.shape[0]))
        offset = 0
        for request in batch:
            _resolve(request, embeddings[offset : offset + request.rows])
            offset += request.rows
