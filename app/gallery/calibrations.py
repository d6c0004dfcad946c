"""Which open-set calibration is in force: the site's own, else the model card's.

A calibration fitted on this gallery (``POST /calibrate``) describes the cameras,
lighting and people the service really sees, so it takes precedence over the one
the model card brought from training data. Site calibrations are rows of
``site_calibrations``, one per model version (another network's scores need other
thresholds). The one for the loaded model is read at start-up and kept in memory,
so a query pays no database read for it; this process is the only writer (one
process owns one gallery), and every write goes to the database before the cache.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import SiteCalibration, utc_now
from app.gallery.errors import CalibrationNotFound
from model.evaluation.calibration import Calibration, CalibrationError

log = logging.getLogger(__name__)

Source = Literal["gallery", "model"]


@dataclass(frozen=True)
class InForce:
    """The calibration decisions use, and where it came from."""

    calibration: Calibration
    source: Source
    created_at: datetime | None = None  # when a site calibration was fitted
    job_id: str | None = None  # the POST /calibrate job that fitted it
    details: dict[str, Any] | None = None  # that job's probe split


class Calibrations:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        model_version: str,
        model_calibration: Calibration | None,
    ) -> None:
        self._sessions = sessions
        self._model_version = model_version
        self._model = InForce(model_calibration, "model") if model_calibration is not None else None
        self._site: InForce | None = None

    def load(self) -> None:
        """Read the loaded model's site calibration (start-up)."""
        with self._sessions() as session:
            row = session.get(SiteCalibration, self._model_version)
        self._site = None if row is None else self._from_row(row)

    def _from_row(self, row: SiteCalibration) -> InForce | None:
        try:
            calibration = Calibration.from_dict(row.calibration)
        except CalibrationError as error:
            # Only a hand-edited row can fail here; deciding with the card's calibration
            # (or none) is safe, and DELETE /calibration removes the row.
            log.error(
                "the site calibration of model %s is invalid and is ignored: %s",
                self._model_version,
                error,
            )
            return None
        return InForce(calibration, "gallery", row.created_at, row.job_id, row.details)

    def in_force(self) -> InForce | None:
        """The site calibration, else the model card's, else None (uncalibrated)."""
        return self._site or self._model

    def save(self, calibration: Calibration, *, job_id: str, details: dict[str, Any]) -> None:
        """Store (replacing any earlier one) the site calibration of the loaded model."""
        row = SiteCalibration(
            model_version=self._model_version,
            calibration=calibration.to_dict(),
            details=details,
            job_id=job_id,
            created_at=utc_now(),
        )
        with self._sessions() as session:
            session.merge(row)
            session.commit()
        self._site = InForce(calibration, "gallery", row.created_at, job_id, details)

    def delete(self) -> None:
        """Remove the loaded model's site calibration, so the card's (if any) is in force."""
        with self._sessions() as session:
            result = session.execute(
                delete(SiteCalibration).where(SiteCalibration.model_version == self._model_version)
            )
            session.commit()
        self._site = None
        if not result.rowcount:  # type: ignore[attr-defined]
            raise CalibrationNotFound(
                f"no site calibration is stored for model {self._model_version}; "
                "POST /calibrate fits one"
            )
