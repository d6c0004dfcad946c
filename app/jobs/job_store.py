"""Evaluation jobs as rows, so their outcome survives restarts.

A job belongs to the replica that accepted it (its uploads are on that replica's
disk). A job that was queued or running when its replica stopped is marked
failed (``interrupted``) rather than vanishing: by the replica itself at its next
start-up, or by any other replica once the owner has been silent too long. Two
replicas failing the same dead replica's jobs split them with
``FOR UPDATE SKIP LOCKED``, so neither waits on the other and each job is
failed once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import EvaluationJob, utc_now
from app.jobs.errors import JobNotFound

ACTIVE = ("queued", "running")


class JobStore:
    def __init__(self, sessions: sessionmaker[Session], *, replica_id: str) -> None:
        self._sessions = sessions
        self.replica_id = replica_id

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
            replica_id=self.replica_id,
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

    def start(self, job_id: str) -> bool:
        """Mark this replica's queued job running; False if it is no longer queued
        (another replica failed it while this one seemed silent)."""
        with self._sessions() as session:
            result = session.execute(
                update(EvaluationJob)
                .where(EvaluationJob.id == job_id, EvaluationJob.status == "queued")
                .values(status="running", started_at=utc_now())
            )
            session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def fail_own(self, reason: str) -> int:
        """Fail this replica's unfinished jobs, and any from before jobs had owners."""
        return self._fail_active(
            or_(EvaluationJob.replica_id == self.replica_id, EvaluationJob.replica_id.is_(None)),
            reason,
        )

    def fail_of(self, replica_ids: set[str], reason: str) -> int:
        """Fail the unfinished jobs of replicas that stopped answering."""
        if not replica_ids:
            return 0
        return self._fail_active(EvaluationJob.replica_id.in_(sorted(replica_ids)), reason)

    def _fail_active(self, owned: Any, reason: str) -> int:
        with self._sessions() as session:
            ids = session.scalars(
                select(EvaluationJob.id)
                .where(EvaluationJob.status.in_(ACTIVE), owned)
                .with_for_update(skip_locked=True)
            ).all()
            if ids:
                session.execute(
                    update(EvaluationJob)
                    .where(EvaluationJob.id.in_(ids))
                    .values(
                        status="failed",
                        error_code="interrupted",
                        error_message=reason,
                        finished_at=utc_now(),
                    )
                )
            session.commit()
        return len(ids)
