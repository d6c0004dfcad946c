"""Response bodies, with examples for the OpenAPI docs at /docs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas_open_set import DecisionBody
from app.db.models import EvaluationJob, GalleryEntry
from app.gallery.enrollment import Enrolled
from app.gallery.identify import Identification
from app.gallery.reads import IdentityCounts, IdentityRecord

_SHA = "9f2c1e8b7a6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928171605f4e3"


class ErrorBody(BaseModel):
    code: str = Field(examples=["invalid_image"])
    message: str = Field(
        examples=["file #2 ('b.jpg'): not a decodable image (truncated or corrupt)"]
    )
    details: Any = Field(default=None, examples=[{"filename": "b.jpg", "index": 1}])


class ErrorResponse(BaseModel):
    error: ErrorBody


class EnrolledEntry(BaseModel):
    id: int = Field(examples=[42])
    sha256: str = Field(examples=[_SHA])
    camera: str | None = Field(examples=["lobby-2"])
    captured_at: datetime | None = Field(examples=["2026-03-01T08:15:00Z"])
    created: bool = Field(
        description="false when these exact bytes were already enrolled for this identity",
        examples=[True],
    )


class EnrollResponse(BaseModel):
    identity: str = Field(examples=["alice"])
    entries: list[EnrolledEntry]

    @classmethod
    def of(cls, identity: str, stored: list[Enrolled]) -> EnrollResponse:
        return cls(
            identity=identity,
            entries=[
                EnrolledEntry(
                    id=entry.id,
                    sha256=entry.sha256,
                    camera=entry.camera,
                    captured_at=entry.captured_at,
                    created=created,
                )
                for entry, created in stored
            ],
        )


class Entry(BaseModel):
    """A gallery entry as stored (the embedding itself is never returned)."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(examples=[42])
    identity: str = Field(examples=["alice"])
    sha256: str = Field(examples=[_SHA])
    camera: str | None = Field(examples=["lobby-2"])
    captured_at: datetime | None = Field(examples=["2026-03-01T08:15:00Z"])
    source: str | None = Field(examples=["nvr-7"])
    # The ORM attribute is ``extra`` (``metadata`` is reserved by SQLAlchemy).
    metadata: dict[str, Any] | None = Field(validation_alias="extra", examples=[{"track": 118}])
    image_format: str = Field(examples=["jpeg"])
    width: int = Field(examples=[64])
    height: int = Field(examples=[128])
    byte_size: int = Field(examples=[5120])
    model_version: str = Field(examples=["3b9c0d1e2f4a5b6c"])
    created_at: datetime

    @classmethod
    def of(cls, entry: GalleryEntry) -> Entry:
        return cls.model_validate(entry)


class EntryPage(BaseModel):
    items: list[Entry]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null on the last page"
    )


class DeletedEntry(BaseModel):
    id: int
    identity: str
    deleted: bool = True


class IdentitySummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    identity: str = Field(examples=["alice"])
    entry_count: int = Field(examples=[3])
    first_enrolled_at: datetime | None
    last_enrolled_at: datetime | None

    @classmethod
    def of(cls, counts: IdentityCounts) -> IdentitySummary:
        return cls.model_validate(counts)


class IdentityPage(BaseModel):
    items: list[IdentitySummary]
    next_cursor: str | None


class IdentityDetail(IdentitySummary):
    cameras: list[str] = Field(examples=[["lobby-2", "gate-1"]])
    first_captured_at: datetime | None
    last_captured_at: datetime | None
    entries: list[Entry] = Field(
        description="the first entries by id (at most 100); page the rest with "
        "GET /gallery?identity=..."
    )

    @classmethod
    def of(cls, record: IdentityRecord) -> IdentityDetail:
        return cls.model_validate(record)


class ErasedIdentity(BaseModel):
    identity: str
    deleted_entries: int = Field(examples=[3])


class QueryResult(BaseModel):
    rank: int = Field(examples=[1])
    identity: str = Field(examples=["alice"])
    score: float = Field(description="cosine similarity of the best entry", examples=[0.83])
    entry_id: int = Field(description="the identity's best-matching entry", examples=[42])
    camera: str | None = Field(description="that entry's camera", examples=["lobby-2"])
    matches: int = Field(
        description=(
            "how many of the identity's entries among the nearest entries the search "
            "examined (max(64, 8 x top_k), more after widening) pass the filters and "
            "min_score: a lower bound on all its passing entries, equal for a small gallery"
        ),
        examples=[3],
    )


class QueryTimings(BaseModel):
    decode_ms: float = Field(examples=[1.9])
    embed_ms: float = Field(examples=[14.2])
    search_ms: float = Field(examples=[0.8])
    total_ms: float = Field(examples=[17.4])


class QueryResponse(BaseModel):
    results: list[QueryResult]
    decision: DecisionBody
    model_version: str = Field(examples=["3b9c0d1e2f4a5b6c"])
    gallery_size: int = Field(examples=[1200])
    timings: QueryTimings

    @classmethod
    def of(cls, found: Identification) -> QueryResponse:
        timings = found.timings
        return cls(
            results=[
                QueryResult(
                    rank=rank,
                    identity=match.identity,
                    score=round(match.score, 6),
                    entry_id=match.entry_id,
                    camera=match.camera,
                    matches=match.matches,
                )
                for rank, match in enumerate(found.matches, start=1)
            ],
            decision=DecisionBody.of(found.decision),
            model_version=found.model_version,
            gallery_size=found.gallery_size,
            timings=QueryTimings(
                decode_ms=_ms(timings.decode_s),
                embed_ms=_ms(timings.embed_s),
                search_ms=_ms(timings.search_s),
                total_ms=_ms(timings.total_s),
            ),
        )


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class EvaluationAccepted(BaseModel):
    id: str = Field(examples=["5d0f4c3b2a1948e7b6a5c4d3e2f1a0b9"])
    status: str = Field(examples=["queued"])
    kind: str = Field(examples=["market_zip"])
    status_url: str = Field(examples=["/evaluate/5d0f4c3b2a1948e7b6a5c4d3e2f1a0b9"])

    @classmethod
    def of(cls, job: EvaluationJob, polled_at: str = "/evaluate") -> EvaluationAccepted:
        return cls(id=job.id, status="queued", kind=job.kind, status_url=f"{polled_at}/{job.id}")


class EvaluationStatus(BaseModel):
    id: str
    kind: str = Field(description="market_zip, labelled_queries or site_calibration")
    status: str = Field(description="queued, running, succeeded or failed")
    progress: float = Field(ge=0, le=1)
    model_version: str
    params: dict[str, Any]
    result: dict[str, Any] | None = Field(
        description="once succeeded: metrics (mAP, mINP, rank1/5/10, cmc), counts and timings "
        "(labelled_queries: also ranked_lists, the first queries' best entries); for "
        "site_calibration the fitted calibration, the probe split and operating points"
    )
    error: ErrorBody | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: EvaluationJob) -> EvaluationStatus:
        error = (
            ErrorBody(code=job.error_code, message=job.error_message or "", details=None)
            if job.error_code
            else None
        )
        return cls(
            id=job.id,
            kind=job.kind,
            status=job.status,
            progress=job.progress,
            model_version=job.model_version,
            params=job.params,
            result=job.result,
            error=error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    checks: dict[str, Any]


class WhoAmI(BaseModel):
    name: str = Field(
        description="the API key's name; 'local (authentication disabled)' without keys",
        examples=["cam-ops"],
    )
    role: Literal["read", "write", "admin"] = Field(
        description="each role implies the ones before it", examples=["write"]
    )
    auth_enabled: bool = Field(description="whether the service checks API keys at all")
