"""Background jobs: accepted at once, run one at a time in the background, polled by id.

Uploads are kept in ``<data dir>/jobs/<id>/`` until the job ends. The evaluation
kinds (``market_zip``: a Market-1501 zip scored in isolation; ``labelled_queries``:
labelled crops scored against the live gallery) and site calibration
(``site_calibration``: open-set thresholds fitted on labelled crops against the live
gallery) share this runner and one table; what is particular to each lives in its
own module. Metrics come from the shared evaluator, so they equal
``python -m training.evaluate``'s on the same images.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

from app.db.models import EvaluationJob, utc_now
from app.errors import ReidError
from app.gallery import Gallery
from app.inference.decoding import Upload
from app.jobs import labelled, market_zip, site_calibration
from app.jobs.job_store import JobStore
from app.jobs.labelled import QueryLabels
from app.jobs.members import MemberEmbedder, Progress
from app.jobs.ranking_options import RankingOptions
from app.jobs.zipcheck import ZipLimits

log = logging.getLogger(__name__)

# Embedding is most of a job; the rest of the bar is the metrics.
_EMBEDDING_SHARE = 0.95

Run = Callable[[Path, Progress], Awaitable[dict[str, Any]]]

EVALUATION_KINDS = (market_zip.KIND, labelled.KIND)
CALIBRATION_KINDS = (site_calibration.KIND,)


class EvaluationRunner:
    def __init__(
        self,
        jobs: JobStore,
        *,
        jobs_dir: Path,
        gallery: Gallery,
        embedder: MemberEmbedder,
        zip_limits: ZipLimits,
        max_gallery: int,
    ) -> None:
        self._jobs = jobs
        self.jobs_dir = jobs_dir
        self._gallery = gallery
        self._embedder = embedder
        self.zip_limits = zip_limits
        self.max_gallery = max_gallery
        self._lock = asyncio.Lock()  # one job at a time: they share the model
        self._tasks: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- lifecycle
    def mark_interrupted(self, reason: str) -> int:
        """Fail this replica's jobs left queued or running (start-up and shutdown); drop
        their files."""
        count = self._jobs.fail_own(reason)
        if self.jobs_dir.exists():
            active = {task.get_name() for task in self._tasks}
            for leftover in self.jobs_dir.iterdir():
                if leftover.is_dir() and leftover.name not in active:
                    shutil.rmtree(leftover, ignore_errors=True)
        return count

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(
            self.mark_interrupted,
            "the service shut down before the job finished; submit it again",
        )

    def get(self, job_id: str, kinds: tuple[str, ...]) -> EvaluationJob:
        """The job with this id, if it is one of these kinds (each route polls its own)."""
        return self._jobs.get(job_id, kinds)

    # ----------------------------------------------------------------- submission
    async def submit_market_zip(
        self, source: BinaryIO, filename: str | None, options: RankingOptions
    ) -> EvaluationJob:
        """Store and check the zip (refusing anything hostile), then queue the job."""

        def prepare(directory: Path) -> dict[str, Any]:
            with open(directory / market_zip.ARCHIVE, "wb") as handle:
                shutil.copyfileobj(source, handle, length=1 << 20)
            params = market_zip.prepare(directory, self.zip_limits, options)
            return {**params, "filename": filename}

        async def run(directory: Path, progress: Progress) -> dict[str, Any]:
            return await market_zip.run(
                directory, self.zip_limits, self._embedder, progress, options
            )

        return await self._submit(market_zip.KIND, prepare, run)

    async def submit_labelled(
        self, uploads: list[Upload], labels: QueryLabels, options: RankingOptions
    ) -> EvaluationJob:
        """Check the gallery can be evaluated against, store the queries, queue the job."""

        def prepare(directory: Path) -> dict[str, Any]:
            return labelled.prepare(
                directory, uploads, labels, self._gallery, self.max_gallery, options
            )

        async def run(directory: Path, progress: Progress) -> dict[str, Any]:
            return await labelled.run(directory, self._gallery, self._embedder, progress, options)

        return await self._submit(labelled.KIND, prepare, run)

    async def submit_calibration(self, uploads: list[Upload], labels: QueryLabels) -> EvaluationJob:
        """Check the gallery can be calibrated on, store the probes, queue the job."""

        def prepare(directory: Path) -> dict[str, Any]:
            return site_calibration.prepare(
                directory, uploads, labels, self._gallery, self.max_gallery
            )

        async def run(directory: Path, progress: Progress) -> dict[str, Any]:
            return await site_calibration.run(directory, self._gallery, self._embedder, progress)

        return await self._submit(site_calibration.KIND, prepare, run)

    async def _submit(
        self, kind: str, prepare: Callable[[Path], dict[str, Any]], run: Run
    ) -> EvaluationJob:
        job_id = uuid.uuid4().hex
        directory = self.jobs_dir / job_id
        await asyncio.to_thread(directory.mkdir, parents=True)
        try:
            params = await asyncio.to_thread(prepare, directory)
            job = await asyncio.to_thread(
                self._jobs.create,
                job_id,
                kind,
                model_version=self._gallery.store.model_version,
                params=params,
            )
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        task = asyncio.create_task(self._execute(job_id, directory, run), name=job_id)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    # ----------------------------------------------------------------- execution
    async def _execute(self, job_id: str, directory: Path, run: Run) -> None:
        try:
            async with self._lock:
                if not await asyncio.to_thread(self._jobs.start, job_id):
                    return  # failed meanwhile by a replica that thought this one dead
                started = time.perf_counter()

                async def progress(fraction: float) -> None:
                    value = round(_EMBEDDING_SHARE * fraction, 4)
                    await asyncio.to_thread(self._jobs.update, job_id, progress=value)

                result = await run(directory, progress)
                result["timings"]["total_s"] = round(time.perf_counter() - started, 3)
                await asyncio.to_thread(
                    self._jobs.update,
                    job_id,
                    status="succeeded",
                    progress=1.0,
                    result=result,
                    finished_at=utc_now(),
                )
        except asyncio.CancelledError:
            raise  # shutdown() marks it failed
        except ReidError as error:
            await asyncio.to_thread(self._jobs.fail, job_id, error.code, error.message)
        except Exception as error:
            log.exception("evaluation job %s failed", job_id)
            await asyncio.to_thread(
                self._jobs.fail, job_id, "evaluation_failed", f"{type(error).__name__}: {error}"
            )
        finally:
            shutil.rmtree(directory, ignore_errors=True)
