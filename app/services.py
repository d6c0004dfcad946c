"""The composition root: every part of the service, built at start-up and torn down at shutdown.

``build_services`` accepts the parts a caller may already hold (today the
embedder, which tests share across apps), so nothing has to be patched in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from app.db.engine import open_database, session_factory
from app.db.notifications import Notifications
from app.db.single_process import SingleProcessLock
from app.gallery import Gallery
from app.gallery.change_log import CHANNEL
from app.gallery.crops import CropStore
from app.gallery.maintenance import Maintenance
from app.gallery.replicas import ReplicaRegistry
from app.gallery.thumbnails import Thumbnails
from app.index.spec import IndexSpec
from app.inference.batcher import DynamicBatcher
from app.inference.decoding import ImageDecoder
from app.inference.embedder import Embedder, load_embedder
from app.inference.explain import Explainer
from app.jobs.job_store import JobStore
from app.jobs.members import MemberEmbedder
from app.jobs.runner import EvaluationRunner
from app.jobs.zipcheck import ZipLimits
from app.replication import ReplicaLoop
from app.settings import Settings
from app.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    telemetry: Telemetry
    engine: Engine
    embedder: Embedder
    decoder: ImageDecoder
    batcher: DynamicBatcher
    explainer: Explainer
    gallery: Gallery
    maintenance: Maintenance
    evaluations: EvaluationRunner
    replication: ReplicaLoop
    single_process: SingleProcessLock | None


def build_services(
    settings: Settings, telemetry: Telemetry, *, embedder: Embedder | None = None
) -> Services:
    """Blocking start-up: database, migrations, model, index (snapshot or rebuild)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    single_process = None
    if settings.sqlite_file is not None:
        single_process = SingleProcessLock(settings.sqlite_file)
        single_process.acquire()
    try:
        engine = open_database(settings)
    except BaseException:
        if single_process is not None:
            single_process.release()
        raise
    try:
        sessions = session_factory(engine)
        embedder = embedder or load_embedder(settings)
        decoder = ImageDecoder(
            settings.decode_threads, settings.max_image_pixels, embedder.card.config.input_size
        )
        batcher = DynamicBatcher(
            embedder.embed,
            max_batch=settings.batch_max_size,
            max_wait_ms=settings.batch_max_wait_ms,
            telemetry=telemetry,
        )
        replica_id = settings.resolved_replica_id
        registry = ReplicaRegistry(sessions, replica_id=replica_id, model_version=embedder.version)
        crops = CropStore(settings.crop_store_dir)
        thumbnails = Thumbnails(settings.thumbnails_dir, crops)
        gallery = Gallery.build(
            sessions,
            model_version=embedder.version,
            dim=embedder.dim,
            spec=settings.section(IndexSpec),
            crops=crops,
            thumbnails=thumbnails,
            snapshot_path=settings.snapshot_path,
            decoder=decoder,
            batcher=batcher,
            telemetry=telemetry,
            model_calibration=embedder.card.calibration,
            serving_versions=lambda: registry.serving_versions(settings.replica_silent_after_s),
            backfill_interval_s=settings.maintenance_interval_s,
        )
        gallery.lifecycle.open()
        registry.register(gallery.lifecycle.follower.applied, gallery.lifecycle.snapshot_seq)
        gallery.calibrations.load()
        if gallery.lifecycle.versions.refusing:
            log.error("%s", gallery.lifecycle.versions.mismatch_message())
        zip_limits = settings.section(ZipLimits)
        jobs = JobStore(sessions, replica_id=replica_id)
        evaluations = EvaluationRunner(
            jobs,
            jobs_dir=settings.jobs_dir,
            gallery=gallery,
            embedder=MemberEmbedder(
                batcher=batcher,
                decoder=decoder,
                dim=embedder.dim,
                max_member_bytes=zip_limits.max_file_bytes,
            ),
            zip_limits=zip_limits,
            max_gallery=settings.evaluate_max_gallery,
        )
        interrupted = evaluations.mark_interrupted(
            "the service restarted before the job finished; submit it again"
        )
        if interrupted:
            log.warning("marked %d interrupted evaluation job(s) as failed", interrupted)
    except BaseException:
        engine.dispose()
        if single_process is not None:
            single_process.release()
        raise
    return Services(
        settings=settings,
        telemetry=telemetry,
        engine=engine,
        embedder=embedder,
        decoder=decoder,
        batcher=batcher,
        explainer=Explainer(embedder, decoder),
        gallery=gallery,
        maintenance=Maintenance(
            lifecycle=gallery.lifecycle,
            store=gallery.store,
            crops=crops,
            thumbnails=gallery.thumbnails,
            interval_s=settings.maintenance_interval_s,
            snapshot_interval_s=settings.snapshot_interval_s,
        ),
        evaluations=evaluations,
        replication=ReplicaLoop(
            lifecycle=gallery.lifecycle,
            notifications=Notifications(engine, CHANNEL),
            registry=registry,
            jobs=jobs,
            settings=settings,
        ),
        single_process=single_process,
    )


def close_services(services: Services) -> None:
    """Blocking shutdown: stop inference, persist the index, release connections."""
    services.replication.close()
    services.batcher.stop()
    services.decoder.close()
    try:
        services.gallery.lifecycle.write_snapshot()
    except OSError:
        log.exception("could not write the index snapshot at shutdown")
    try:
        services.replication.stopped()
    except Exception:  # the database is away: the heartbeat bound says it instead
        log.warning("could not record this replica's stop in the database", exc_info=True)
    services.engine.dispose()
    if services.single_process is not None:
        services.single_process.release()
