"""Evaluation jobs: Market-1501 zips scored in isolation, or labelled queries vs the gallery.

Jobs are rows in ``evaluation_jobs`` so their outcome survives restarts; a job
that was queued or running when the process stopped is marked failed
(``interrupted``) at the next start-up rather than vanishing. Uploads are kept
in ``<data dir>/jobs/<id>/`` until the job ends. Images are decoded with the
shared preprocessing and embedded through the same dynamic batcher as live
traffic; metrics come from the shared evaluator.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.batcher import DynamicBatcher
from app.errors import ApiError
from app.gallery import Gallery
from app.images import ImageDecoder, Upload
from app.orm import EvaluationJob, utc_now
from app.zipcheck import Member, ZipLimits, open_checked, plan_market_zip, read_member
from model.evaluation.metrics import compute_reid_metrics

log = logging.getLogger(__name__)

MARKET_ZIP = "market_zip"
LABELLED_QUERIES = "labelled_queries"
ACTIVE = ("queued", "running")
_CHUNK_BATCHES = 4
_MAX_LISTED_SKIPS = 20


class JobFailedError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Embedded:
    features: np.ndarray
    kept: list[int]
    skipped: list[dict[str, str]]


class EvaluationRunner:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        jobs_dir: Path,
        batcher: DynamicBatcher,
        decoder: ImageDecoder,
        gallery: Gallery,
        model_version: str,
        zip_limits: ZipLimits,
        max_gallery: int,
    ) -> None:
        self._sessions = sessions
        self.jobs_dir = jobs_dir
        self._batcher = batcher
        self._decoder = decoder
        self._gallery = gallery
        self.model_version = model_version
        self.zip_limits = zip_limits
        self.max_gallery = max_gallery
        self._lock = asyncio.Lock()  # one job at a time: they share the model
        self._tasks: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- lifecycle
    def mark_interrupted(self, reason: str) -> int:
        """Fail every job left queued or running (start-up and shutdown)."""
        with self._sessions() as session:
            result = session.execute(
                update(EvaluationJob)
                .where(EvaluationJob.status.in_(ACTIVE))
                .values(
                    status="failed",
                    error_code="interrupted",
                    error_message=reason,
                    finished_at=utc_now(),
                )
            )
            session.commit()
        if self.jobs_dir.exists():
            for leftover in self.jobs_dir.iterdir():
                if leftover.is_dir() and not self._is_active_dir(leftover):
                    shutil.rmtree(leftover, ignore_errors=True)
        return int(result.rowcount or 0)

    def _is_active_dir(self, directory: Path) -> bool:
        return any(task.get_name() == directory.name for task in self._tasks)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(
            self.mark_interrupted,
            "the service shut down before the job finished; submit it again",
        )

    # ----------------------------------------------------------------- submission
    def new_job_dir(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex
        directory = self.jobs_dir / job_id
        directory.mkdir(parents=True)
        return job_id, directory

    def prepare_market_zip(self, directory: Path) -> dict[str, Any]:
        """Validate the stored zip (422/413 on anything hostile); returns the job params."""
        archive, members = open_checked(directory / "dataset.zip", self.zip_limits)
        with archive:
            plan = plan_market_zip(members)
        return {"counts": plan.counts()}

    def prepare_labelled(
        self,
        directory: Path,
        uploads: list[Upload],
        identities: list[str],
        cameras: list[str | None],
    ) -> dict[str, Any]:
        self._gallery.require_compatible()
        gallery_size = self._gallery.index.count
        if gallery_size == 0:
            raise ApiError(
                409, "empty_gallery", "the gallery is empty: enroll identities before evaluating"
            )
        if gallery_size > self.max_gallery:
            raise ApiError(
                413,
                "gallery_too_large",
                f"the gallery holds {gallery_size} entries; evaluating against more than "
                f"{self.max_gallery} is refused (REID_EVALUATE_MAX_GALLERY)",
            )
        with zipfile.ZipFile(directory / "queries.zip", "w", zipfile.ZIP_STORED) as archive:
            for upload in uploads:
                archive.writestr(f"{upload.index:06d}", upload.data)
        labels = {
            "filenames": [upload.filename for upload in uploads],
            "identities": identities,
            "cameras": cameras,
        }
        (directory / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
        return {"counts": {"query_images": len(uploads), "gallery_entries": gallery_size}}

    def create_job(self, job_id: str, kind: str, params: dict[str, Any]) -> EvaluationJob:
        job = EvaluationJob(
            id=job_id,
            kind=kind,
            status="queued",
            progress=0.0,
            model_version=self.model_version,
            params=params,
        )
        with self._sessions() as session:
            session.add(job)
            session.commit()
        return job

    def start(self, job_id: str, kind: str, directory: Path) -> None:
        run = self._run_market_zip if kind == MARKET_ZIP else self._run_labelled
        task = asyncio.create_task(self._execute(job_id, directory, run), name=job_id)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def get(self, job_id: str) -> EvaluationJob | None:
        with self._sessions() as session:
            return session.get(EvaluationJob, job_id)

    # ----------------------------------------------------------------- execution
    def _update(self, job_id: str, **values: Any) -> None:
        with self._sessions() as session:
            session.execute(
                update(EvaluationJob).where(EvaluationJob.id == job_id).values(**values)
            )
            session.commit()

    async def _execute(
        self,
        job_id: str,
        directory: Path,
        run: Callable[[str, Path], Awaitable[dict[str, Any]]],
    ) -> None:
        try:
            async with self._lock:
                await asyncio.to_thread(
                    self._update, job_id, status="running", started_at=utc_now()
                )
                started = time.perf_counter()
                result = await run(job_id, directory)
                result["timings"]["total_s"] = round(time.perf_counter() - started, 3)
                await asyncio.to_thread(
                    self._update,
                    job_id,
                    status="succeeded",
                    progress=1.0,
                    result=result,
                    finished_at=utc_now(),
                )
        except asyncio.CancelledError:
            raise  # shutdown() marks it failed
        except (JobFailedError, ApiError) as error:
            await asyncio.to_thread(self._fail, job_id, error.code, str(error))
        except Exception as error:
            log.exception("evaluation job %s failed", job_id)
            await asyncio.to_thread(
                self._fail, job_id, "evaluation_failed", f"{type(error).__name__}: {error}"
            )
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _fail(self, job_id: str, code: str, message: str) -> None:
        self._update(
            job_id, status="failed", error_code=code, error_message=message, finished_at=utc_now()
        )

    async def _embed_members(
        self,
        job_id: str,
        archive: zipfile.ZipFile,
        names: list[str],
        *,
        done_before: int,
        total: int,
    ) -> _Embedded:
        """Decode and embed archive members in chunks, reporting progress."""
        chunk = self._batcher.max_batch * _CHUNK_BATCHES
        features: list[np.ndarray] = []
        kept: list[int] = []
        skipped: list[dict[str, str]] = []
        for start in range(0, len(names), chunk):
            uploads = []
            for offset, name in enumerate(names[start : start + chunk]):
                data = await asyncio.to_thread(
                    read_member, archive, name, self.zip_limits.max_member_bytes
                )
                uploads.append(Upload(filename=name, index=start + offset, data=data))
            decoded = []
            for upload, result in zip(
                uploads, await self._decoder.decode_each(uploads), strict=True
            ):
                if isinstance(result, ApiError):
                    skipped.append({"file": upload.filename, "code": result.code})
                else:
                    decoded.append(result)
            if decoded:
                batch = torch.stack([image.tensor for image in decoded])
                features.append(await self._batcher.embed(batch))
                kept.extend(image.index for image in decoded)
            done = done_before + min(start + chunk, len(names))
            await asyncio.to_thread(
                self._update, job_id, progress=round(0.95 * done / max(total, 1), 4)
            )
        dim = self._gallery.dim
        stacked = np.concatenate(features) if features else np.empty((0, dim), np.float32)
        return _Embedded(stacked, kept, skipped)

    async def _run_market_zip(self, job_id: str, directory: Path) -> dict[str, Any]:
        archive, members = await asyncio.to_thread(
            open_checked, directory / "dataset.zip", self.zip_limits
        )
        with archive:
            plan = plan_market_zip(members)
            total = len(plan.query) + len(plan.gallery)
            started = time.perf_counter()
            query = await self._embed_members(
                job_id, archive, [m.name for m in plan.query], done_before=0, total=total
            )
            gallery = await self._embed_members(
                job_id,
                archive,
                [m.name for m in plan.gallery],
                done_before=len(plan.query),
                total=total,
            )
            embed_s = time.perf_counter() - started
        if not len(query.features) or not len(gallery.features):
            raise JobFailedError(
                "no_decodable_images",
                "no decodable images left in query/ or bounding_box_test/ after skipping "
                f"{len(query.skipped) + len(gallery.skipped)} undecodable file(s)",
            )
        started = time.perf_counter()
        metrics = await asyncio.to_thread(
            compute_reid_metrics,
            query.features,
            gallery.features,
            _labels(plan.query, query.kept, "pid"),
            _labels(plan.gallery, gallery.kept, "pid"),
            _labels(plan.query, query.kept, "camid"),
            _labels(plan.gallery, gallery.kept, "camid"),
        )
        return {
            "metrics": metrics.to_dict(),
            "counts": {
                **plan.counts(),
                "undecodable_skipped": len(query.skipped) + len(gallery.skipped),
            },
            "skipped": (query.skipped + gallery.skipped)[:_MAX_LISTED_SKIPS],
            "timings": {
                "embed_s": round(embed_s, 3),
                "metrics_s": round(time.perf_counter() - started, 3),
            },
        }

    async def _run_labelled(self, job_id: str, directory: Path) -> dict[str, Any]:
        labels = json.loads((directory / "labels.json").read_text(encoding="utf-8"))
        self._gallery.require_compatible()
        with zipfile.ZipFile(directory / "queries.zip") as archive:
            names = sorted(archive.namelist())
            started = time.perf_counter()
            query = await self._embed_members(
                job_id, archive, names, done_before=0, total=len(names)
            )
            embed_s = time.perf_counter() - started
        if not len(query.features):
            raise JobFailedError("no_decodable_images", "none of the query images decoded")
        started = time.perf_counter()
        ids_parts, vector_parts = [], []
        for ids, vectors in await asyncio.to_thread(lambda: list(self._gallery.iter_embeddings())):
            ids_parts.append(ids)
            vector_parts.append(vectors)
        if not ids_parts:
            raise JobFailedError("empty_gallery", "the gallery became empty during the job")
        gallery_ids = np.concatenate(ids_parts)
        gallery_features = np.concatenate(vector_parts)
        owners = await asyncio.to_thread(self._gallery.identities_of, gallery_ids.tolist())
        keep = np.array([int(i) in owners for i in gallery_ids], dtype=bool)
        gallery_ids, gallery_features = gallery_ids[keep], gallery_features[keep]
        identity_codes: dict[str, int] = {}
        camera_codes: dict[str | None, int] = {}

        def code(table: dict[Any, int], key: Any) -> int:
            return table.setdefault(key, len(table) + 1)

        gallery_pids = np.array([code(identity_codes, owners[int(i)][0]) for i in gallery_ids])
        gallery_cams = np.array(
            [
                code(camera_codes, owners[int(i)][1]) if owners[int(i)][1] else -1
                for i in gallery_ids
            ]
        )
        query_pids = np.array([code(identity_codes, labels["identities"][i]) for i in query.kept])
        # A query without a camera must never count as "same camera" as anything.
        query_cams = np.array(
            [
                code(camera_codes, labels["cameras"][i]) if labels["cameras"][i] else -2
                for i in query.kept
            ]
        )
        metrics = await asyncio.to_thread(
            compute_reid_metrics,
            query.features,
            gallery_features,
            query_pids,
            gallery_pids,
            query_cams,
            gallery_cams,
        )
        enrolled = {identity for identity, _ in owners.values()}
        skipped = [
            {"file": labels["filenames"][int(item["file"])], "code": item["code"]}
            for item in query.skipped
        ]
        return {
            "metrics": metrics.to_dict(),
            "counts": {
                "query_images": len(names),
                "gallery_entries": len(gallery_ids),
                "undecodable_skipped": len(skipped),
                "queries_without_gallery_identity": sum(
                    1 for i in query.kept if labels["identities"][i] not in enrolled
                ),
            },
            "skipped": skipped[:_MAX_LISTED_SKIPS],
            "timings": {
                "embed_s": round(embed_s, 3),
                "metrics_s": round(time.perf_counter() - started, 3),
            },
        }


def _labels(members: list[Member], kept: list[int], attribute: str) -> np.ndarray:
    return np.array([getattr(members[i], attribute) for i in kept], dtype=np.int64)
