"""Every knob of the service, read once from ``REID_*`` environment variables.

Names are a public contract (the container image and docs/service.md refer to
them), so they only ever grow. Values are validated here so a typo in a
deployment fails at start-up with the variable's name, not on the first request.
"""

from __future__ import annotations

import dataclasses
import re
import socket
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.index.spec import IndexType

MiB = 1024 * 1024
Section = TypeVar("Section")


class Role(StrEnum):
    """What a key may do; each role implies the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class ApiKeySpec(BaseModel):
    """One configured key: only the SHA-256 of the secret is ever stored."""

    name: str = Field(min_length=1, max_length=64)
    role: Role
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Settings(BaseSettings):
    """Service configuration; see docs/service.md for what each setting does."""

    model_config = SettingsConfigDict(env_prefix="REID_", extra="ignore", frozen=True)

    # Model and inference.
    model_path: Path | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["auto", "on", "off"] = "auto"
    batch_max_size: int = Field(default=32, ge=1, le=1024)
    batch_max_wait_ms: float = Field(default=5.0, ge=0, le=1000)
    decode_threads: int = Field(default=4, ge=1, le=64)

    # Storage. The crop store (crops and their thumbnails) must be one shared volume for
    # every replica; the data directory may be shared too (each replica's snapshot and
    # job files are named by its replica id) or be per replica.
    data_dir: Path = Path("reid-data")
    crops_dir: Path | None = None
    database_url: str | None = None
    auto_migrate: bool | None = None
    db_connect_timeout_s: float = Field(default=30.0, ge=0)

    # Vector index.
    index_type: IndexType = IndexType.FLAT
    index_use_gpu: bool = True
    ivf_nlist: int = Field(default=1024, ge=1)
    ivf_nprobe: int = Field(default=384, ge=1)
    hnsw_m: int = Field(default=32, ge=4, le=256)
    hnsw_ef_construction: int = Field(default=200, ge=8)
    hnsw_ef_search: int = Field(default=256, ge=8)
    index_compact_fraction: float = Field(default=0.1, gt=0, le=1)
    maintenance_interval_s: float = Field(default=60.0, gt=0)
    snapshot_interval_s: float = Field(default=300.0, gt=0)

    # Replicas: each follows the database's change log (woken by NOTIFY, polling as well).
    replica_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    change_poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    max_replica_lag_s: float = Field(default=10.0, gt=0)
    replica_silent_after_s: float = Field(default=60.0, gt=0)
    replica_forget_after_s: float = Field(default=86_400.0, gt=0)
    # Entries without the loaded model's embedding are embedded from their stored crops
    # by the replica itself (after a model change, and during a two-version upgrade).
    reembed_in_background: bool = True

    # Request limits.
    max_file_bytes: int = Field(default=10 * MiB, ge=1)
    max_files_per_request: int = Field(default=32, ge=1)
    max_body_bytes: int = Field(default=64 * MiB, ge=1)
    max_image_pixels: int = Field(default=16_000_000, ge=1)
    max_metadata_bytes: int = Field(default=4096, ge=2)
    max_form_fields: int = Field(default=32, ge=1)  # text fields of one multipart body

    # Evaluation uploads.
    evaluate_max_upload_bytes: int = Field(default=512 * MiB, ge=1)
    zip_max_files: int = Field(default=50_000, ge=1)
    zip_max_uncompressed_bytes: int = Field(default=2048 * MiB, ge=1)
    zip_max_ratio: float = Field(default=100.0, gt=1)
    evaluate_max_gallery: int = Field(default=200_000, ge=1)

    # Open-set decisions: the false-positive identification rate a query's decision keeps
    # when the request names none (POST /query max_false_positive_rate).
    open_set_fpir: float = Field(default=0.01, gt=0, le=0.5, allow_inf_nan=False)

    # Security and launcher.
    api_keys: list[ApiKeySpec] = Field(default_factory=list)
    allow_unauthenticated: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @field_validator("api_keys")
    @classmethod
    def _unique_key_names(cls, keys: list[ApiKeySpec]) -> list[ApiKeySpec]:
        names = [key.name for key in keys]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate API key name(s): {', '.join(duplicates)}")
        return keys

    @model_validator(mode="after")
    def _known_database(self) -> Settings:
        url = self.resolved_database_url
        if not url.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "REID_DATABASE_URL must be sqlite:///... or postgresql+psycopg://...; "
                f"got {url.split(':', 1)[0]}:..."
            )
        return self

    def section(self, kind: type[Section]) -> Section:
        """A component's configuration dataclass, filled from the settings of the same names.

        Components (``IndexSpec``, ``ZipLimits``) name their fields as the settings they
        come from, so no hand-written copy can drop or misroute a value; a field without
        a setting fails here, at start-up and in every test that starts the service.
        """
        values: dict[str, Any] = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(kind)  # type: ignore[arg-type]
        }
        return kind(**values)

    @property
    def resolved_database_url(self) -> str:
        """The database to use: the setting, else an SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'reid.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file, if the database is one (and not in memory)."""
        if not self.is_sqlite:
            return None
        database = self.resolved_database_url.split("///", 1)[-1]
        return Path(database) if database and database != ":memory:" else None

    @property
    def migrate_on_startup(self) -> bool:
        """SQLite is private to this process, so it migrates itself unless told not to."""
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    @property
    def resolved_replica_id(self) -> str:
        """This process's name among the replicas: the setting, else the host name
        (a container's, under Compose), made safe for a file name."""
        if self.replica_id:
            return self.replica_id
        name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-.")
        return (name or "replica")[:128]

    @property
    def crop_store_dir(self) -> Path:
        return self.crops_dir or self.data_dir / "crops"

    @property
    def thumbnails_dir(self) -> Path:
        """Beside the crops, so erasing an identity on one replica erases them for all."""
        return self.crop_store_dir / "thumbnails"

    @property
    def jobs_dir(self) -> Path:
        """This replica's job uploads: a job runs on the replica that accepted it."""
        return self.data_dir / "jobs" / self.resolved_replica_id

    @property
    def snapshot_path(self) -> Path:
        return self.data_dir / "snapshots" / f"{self.resolved_replica_id}.snapshot"
