"""Evaluation jobs as rows, so their outcome survives restarts.

A job that was queued or running when the process stopped is marked failed
(``interrupted``) at the next start-up rather than vanishing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import EvaluationJob, utc_now
from app.jobs.errors import JobNotFound

ACTIVE = ("queued", "running")


class JobStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(
        self, job_id: str, kind: str, *, model_version: str, params: dict[str, Any]
    ) -> EvaluationJob:
        job = EvaluationJob(
            id=job_id,
            kind=kind,
            status="queued",
            progress=0.0,
            model_version=model_version,
            params=params,
        )
        with self._sessions() as session:
            session.add(job)
            session.commit()
        return job

    def get(self, job_id: str, kinds: tuple[str, ...]) -> EvaluationJob:
        """The job, if it is one of ``kinds``; any other is as absent as a missing one."""
        with self._sessions() as session:
            job = session.get(EvaluationJob, job_id)
        if job is None or job.kind not in kinds:
            raise JobNotFound(f"no {' or '.join(kinds)} job {job_id!r} exists")
        return job

    def update(self, job_id: str, **values: Any) -> None:
        with self._sessions() as session:
            session.execute(
                update(EvaluationJob).where(EvaluationJob.id == job_id).values(**values)
            )
            session.commit()

    def fail(self, job_id: str, code: str, message: str) -> None:
        self.update(
            job_id, status="failed", error_code=code, error_message=message, finished_at=utc_now()
        )

    def fail_active(self, reason: str) -> int:
        """Mark every job left queued or running as failed; returns how many."""
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
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
