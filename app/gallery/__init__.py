"""The gallery: database rows (the truth), the FAISS index (derived) and the stored crops.

One module per job; ``Gallery.build`` wires them over one database and one index:

* ``enrollment``: crops in, entries out (decode, embed, store);
* ``identify`` / ``search``: who is this? (decode, embed, rank identities);
* ``decisions`` / ``calibrations``: someone we know? (the open-set decision, and which
  calibration is in force: the site's, else the model card's);
* ``removal``: delete an entry, erase an identity;
* ``reads``: listings, identity summaries, stored crops and their ``thumbnails``;
* ``lifecycle``: the index at start-up (snapshot or rebuild), reconcile, snapshots;
* ``change_log`` / ``follower`` / ``replicas``: what changed in the rows, in commit order,
  applied to this replica's index; and which replicas follow the log;
* ``maintenance``: the periodic pass that keeps the index in step;
* ``store``: every row-level SQL statement; ``versions``: which model made the rows;
  ``embedding_slots`` / ``backfill``: two models' embeddings side by side, and making
  the loaded model's from the stored crops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from app.gallery.backfill import Backfill
from app.gallery.calibrations import Calibrations
from app.gallery.change_log import ChangeLog
from app.gallery.crops import CropStore
from app.gallery.decisions import OpenSetDecider
from app.gallery.embedding_slots import EmbeddingSlots
from app.gallery.enrollment import Enrollment
from app.gallery.follower import ChangeFollower
from app.gallery.identify import Identifier
from app.gallery.lifecycle import IndexLifecycle
from app.gallery.live_index import LiveIndex
from app.gallery.reads import GalleryReads
from app.gallery.removal import Removal
from app.gallery.search import GallerySearch
from app.gallery.store import EntryStore
from app.gallery.thumbnails import Thumbnails
from app.gallery.versions import ModelVersions
from app.index.gpu_probe import choose_index_device
from app.index.spec import IndexSpec
from app.inference.batcher import DynamicBatcher
from app.inference.decoding import ImageDecoder
from app.telemetry import Telemetry
from model.evaluation.calibration import Calibration


@dataclass(frozen=True)
class Gallery:
    store: EntryStore
    live: LiveIndex
    crops: CropStore
    thumbnails: Thumbnails
    lifecycle: IndexLifecycle
    enrollment: Enrollment
    search: GallerySearch
    identifier: Identifier
    removal: Removal
    reads: GalleryReads
    calibrations: Calibrations
    decider: OpenSetDecider
    backfill: Backfill

    @classmethod
    def build(
        cls,
        sessions: sessionmaker[Session],
        *,
        model_version: str,
        dim: int,
        spec: IndexSpec,
        crops: CropStore,
        thumbnails: Thumbnails,
        snapshot_path: Path,
        decoder: ImageDecoder,
        batcher: DynamicBatcher,
        telemetry: Telemetry,
        model_calibration: Calibration | None,
        serving_versions: Callable[[], set[str]],
        backfill_interval_s: float,
    ) -> Gallery:
        """Wire the parts; the index stays empty until ``lifecycle.open()``.

        ``model_calibration`` is the model card's; a site calibration stored for this
        model version replaces it once ``calibrations.load()`` has run.
        """
        store = EntryStore(sessions, model_version=model_version, dim=dim)
        spec, gpu = choose_index_device(dim, spec)  # before any GPU index exists
        live = LiveIndex(dim, spec, telemetry)
        follower = ChangeFollower(ChangeLog(sessions), store, live, telemetry)
        slots = EmbeddingSlots(
            sessions, model_version=model_version, serving_versions=serving_versions
        )
        versions = ModelVersions(slots)
        lifecycle = IndexLifecycle(
            store, live, versions, follower, snapshot_path=snapshot_path, gpu=gpu
        )
        backfill = Backfill(slots, versions, crops, decoder, backfill_interval_s)
        follower.on_lacking = backfill.wake
        search = GallerySearch(store=store, live=live, telemetry=telemetry)
        calibrations = Calibrations(
            sessions, model_version=model_version, model_calibration=model_calibration
        )
        decider = OpenSetDecider(store=store, search=search, calibrations=calibrations)
        return cls(
            store=store,
            live=live,
            crops=crops,
            thumbnails=thumbnails,
            lifecycle=lifecycle,
            enrollment=Enrollment(
                store=store,
                live=live,
                crops=crops,
                lifecycle=lifecycle,
                decoder=decoder,
                batcher=batcher,
                telemetry=telemetry,
            ),
            search=search,
            identifier=Identifier(
                store=store,
                search=search,
                live=live,
                lifecycle=lifecycle,
                decoder=decoder,
                batcher=batcher,
                decider=decider,
            ),
            removal=Removal(
                store=store, live=live, crops=crops, thumbnails=thumbnails, telemetry=telemetry
            ),
            reads=GalleryReads(sessions, crops, thumbnails),
            calibrations=calibrations,
            decider=decider,
            backfill=backfill,
        )
