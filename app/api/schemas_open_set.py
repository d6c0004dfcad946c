"""Response bodies of the open-set answers: a query's decision and the calibration in force."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.gallery.decisions import Decision, OperatingPoint, Overview


class DecisionBody(BaseModel):
    """Is the probe someone in the gallery? See docs/open_set.md for what the rate promises."""

    status: Literal["match", "unknown", "uncalibrated"] = Field(
        description="match: the best identity scored at least the threshold; unknown: it did "
        "not, or no identity passed the filters; uncalibrated: no calibration is in force",
        examples=["match"],
    )
    identity: str | None = Field(
        description="the matched identity (match only)", examples=["alice"]
    )
    score: float | None = Field(
        description="the best identity's score, whatever the decision (null when no identity "
        "passed the filters, or uncalibrated)",
        examples=[0.83],
    )
    threshold: float | None = Field(
        description="the cosine the best score had to reach; above 1 means no threshold keeps "
        "the rate at this gallery size (null when no identity passed the filters, or "
        "uncalibrated)",
        examples=[0.71],
    )
    false_positive_rate: float | None = Field(
        description="the FPIR this threshold promises for the effective gallery",
        examples=[0.01],
    )
    calibration: Literal["gallery", "model"] | None = Field(
        description="gallery: fitted on this site (POST /calibrate); model: the model card's",
        examples=["gallery"],
    )
    gallery_identities: int | None = Field(
        ge=0,
        description="identities with at least one entry passing the camera and time filters "
        "(min_score aside): the gallery size the threshold is for",
        examples=[120],
    )
    gallery_entries: int | None = Field(
        ge=0,
        description="the entries those identities hold: with gallery_identities, the "
        "entries per identity the threshold is for (more entries, more chances of an "
        "impostor match)",
        examples=[2400],
    )

    @classmethod
    def of(cls, decision: Decision) -> DecisionBody:
        return cls(
            status=decision.status,
            identity=decision.identity,
            score=decision.score,
            threshold=decision.threshold,
            false_positive_rate=decision.false_positive_rate,
            calibration=decision.calibration,
            gallery_identities=decision.gallery_identities,
            gallery_entries=decision.gallery_entries,
        )


class OperatingPointBody(BaseModel):
    false_positive_rate: float = Field(examples=[0.01])
    threshold: float = Field(examples=[0.71])

    @classmethod
    def of(cls, point: OperatingPoint) -> OperatingPointBody:
        return cls(false_positive_rate=point.false_positive_rate, threshold=point.threshold)


class CalibrationOverview(BaseModel):
    source: Literal["gallery", "model"] | None = Field(
        description="gallery: fitted on this site, which takes precedence; model: the model "
        "card's; null: none, so queries answer uncalibrated",
        examples=["gallery"],
    )
    model_version: str = Field(examples=["3b9c0d1e2f4a5b6c"])
    gallery_identities: int = Field(
        ge=0, description="identities enrolled now: the size thresholds and curve are for"
    )
    thresholds: list[OperatingPointBody] = Field(
        description="at FPIR 10%, 1% and 0.1% for the current gallery (empty when none is in "
        "force or the gallery is empty)"
    )
    curve: list[OperatingPointBody] = Field(
        description="threshold against FPIR from 50% to 0.01% for the current gallery"
    )
    calibrated_gallery_identities: int | None = Field(
        description="the gallery size the calibration was fitted for"
    )
    counts: dict[str, int] | None = Field(
        description="what the fit rests on: impostor_scores, nonmated_probes, mated_probes, "
        "enrolled_identities, size_fit_points, entries_fit_points"
    )
    fpir_spread: dict[str, list[float]] | None = Field(
        description="for each stated threshold (at calibrated_gallery_identities): the 10th "
        "and 90th percentile of the FPIR it would be promised if the calibration had seen "
        "another sample of people like its own; a wide band means the promise rests on few "
        "people (empty for calibrations made before it was measured)",
        examples=[{"0.01": [0.004, 0.03]}],
    )
    created_at: datetime | None = Field(description="when the site calibration was fitted")
    job_id: str | None = Field(description="the POST /calibrate job that fitted it")
    split: dict[str, Any] | None = Field(description="how that job split its probes")

    @classmethod
    def of(cls, overview: Overview) -> CalibrationOverview:
        in_force = overview.in_force
        calibration = None if in_force is None else in_force.calibration
        return cls(
            source=None if in_force is None else in_force.source,
            model_version=overview.model_version,
            gallery_identities=overview.gallery_identities,
            thresholds=[OperatingPointBody.of(point) for point in overview.thresholds],
            curve=[OperatingPointBody.of(point) for point in overview.curve],
            calibrated_gallery_identities=None
            if calibration is None
            else calibration.gallery_identities,
            counts=None if calibration is None else dict(calibration.counts),
            fpir_spread=None
            if calibration is None
            else {key: list(band) for key, band in calibration.fpir_spread.items()},
            created_at=None if in_force is None else in_force.created_at,
            job_id=None if in_force is None else in_force.job_id,
            split=None if in_force is None else in_force.details,
        )
