"""Everything the routes need, built at start-up and torn down at shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.batcher import DynamicBatcher
from app.crops import CropStore
from app.db import open_database, session_factory
from app.evaluation import EvaluationRunner
from app.gallery import Gallery
from app.images import ImageDecoder
from app.inference import Embedder, load_embedder
from app.settings import Settings
from app.telemetry import Telemetry
from app.vector_index import IndexSpec
from app.zipcheck import ZipLimits

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    telemetry: Telemetry
    engine: Engine
    sessions: sessionmaker[Session]
    embedder: Embedder
    decoder: ImageDecoder
    batcher: DynamicBatcher
    gallery: Gallery
    evaluations: EvaluationRunner
    started_at: float = field(default_factory=time.time)
    last_snapshot_at: float = field(default_factory=time.monotonic)


def build_services(settings: Settings, telemetry: Telemetry) -> Services:
    """Blocking start-up: database, migrations, model, index (snapshot or rebuild)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_database(settings)
    try:
        sessions = session_factory(engine)
        embedder = load_embedder(settings)
        gallery = Gallery(
            sessions,
            model_version=embedder.version,
            dim=embedder.dim,
            spec=IndexSpec.from_settings(settings),
            crops=CropStore(settings.crops_dir),
            telemetry=telemetry,
            snapshot_path=settings.snapshot_path,
        )
        gallery.open()
        if gallery.foreign_versions:
            log.error("%s", gallery.mismatch_message())
        decoder = ImageDecoder(settings.decode_threads, settings.max_image_pixels)
        batcher = DynamicBatcher(
            embedder.embed,
            max_batch=settings.batch_max_size,
            max_wait_ms=settings.batch_max_wait_ms,
            telemetry=telemetry,
        )
        evaluations = EvaluationRunner(
            sessions,
            jobs_dir=settings.jobs_dir,
            batcher=batcher,
            decoder=decoder,
            gallery=gallery,
            model_version=embedder.version,
            zip_limits=ZipLimits(
                max_files=settings.zip_max_files,
                max_uncompressed_bytes=settings.zip_max_uncompressed_bytes,
                max_ratio=settings.zip_max_ratio,
                max_member_bytes=settings.max_file_bytes,
            ),
            max_gallery=settings.evaluate_max_gallery,
        )
        interrupted = evaluations.mark_interrupted(
            "the service restarted before the job finished; submit it again"
        )
        if interrupted:
            log.warning("marked %d interrupted evaluation job(s) as failed", interrupted)
    except BaseException:
        engine.dispose()
        raise
    return Services(
        settings=settings,
        telemetry=telemetry,
        engine=engine,
        sessions=sessions,
        embedder=embedder,
        decoder=decoder,
        batcher=batcher,
        gallery=gallery,
        evaluations=evaluations,
    )


def close_services(services: Services) -> None:
    """Blocking shutdown: stop inference, persist the index, release connections."""
    services.batcher.stop()
    services.decoder.close()
    try:
        services.gallery.write_snapshot()
    except OSError:
        log.exception("could not write the index snapshot at shutdown")
    services.engine.dispose()


async def maintenance_loop(services: Services) -> None:
    """Periodic upkeep: model-version census, compaction/IVF training, snapshots, orphans."""
    settings = services.settings
    first = True
    while True:
        await asyncio.sleep(0 if first else settings.maintenance_interval_s)
        try:
            gallery = services.gallery
            await asyncio.to_thread(gallery.refresh_versions)
            await asyncio.to_thread(gallery.maybe_rebuild)
            if time.monotonic() - services.last_snapshot_at >= settings.snapshot_interval_s:
                await asyncio.to_thread(gallery.write_snapshot)
                services.last_snapshot_at = time.monotonic()
            if first:
                await asyncio.to_thread(gallery.crops.sweep_orphans, gallery.referenced_hashes)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("maintenance pass failed; will retry")
        first = False


def get_services(request: Request) -> Services:
    return request.app.state.services
