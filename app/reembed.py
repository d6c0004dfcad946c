"""Re-embed the gallery with the configured model: ``python -m app.reembed``.

After REID_MODEL_PATH changes, the entries hold the old model's embeddings, which
cannot be compared with the new model's queries. This gives every entry that lacks
one an embedding by the configured model, computed from its stored crop (same
settings as the service, so run it with the service's environment). The new
embedding goes into the entry's free slot, so replicas of the old model keep
serving meanwhile: see docs/replicas.md, "Zero-downtime model upgrade". Replicas
of the new model do the same work in the background unless
REID_REEMBED_IN_BACKGROUND is off; this runs it in bulk, and they share it.
Batches are committed as they finish, so an interrupted run can simply be started
again; each commit is in the change log, so running replicas follow it.

``--retire VERSION`` drops that model's embeddings wherever the entry holds
another's (the last step of an upgrade, once no replica serves VERSION).

Exit status: 0 when every entry holds the configured model's embedding (or, with
--retire, none is left holding only VERSION's); 1 when some crops were missing
(listed; delete those entries, or pass --delete-missing) or entries hold only
the retired version; 2 on a usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError
from sqlalchemy import delete

import model  # noqa: F401  (torchvision shim)
from app.db.engine import open_database, session_factory
from app.db.models import GalleryEntry
from app.gallery import change_log
from app.gallery.backfill import crop_embedder
from app.gallery.crops import CropStore
from app.gallery.embedding_slots import EmbeddingSlots
from app.gallery.replicas import ReplicaRegistry
from app.inference.embedder import load_embedder
from app.settings import Settings

log = logging.getLogger("app.reembed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.reembed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--batch-size", type=int, default=64, help="crops per forward pass")
    parser.add_argument(
        "--delete-missing",
        action="store_true",
        help="delete entries whose stored crop is missing or unreadable instead of keeping them",
    )
    parser.add_argument(
        "--retire",
        metavar="VERSION",
        help="drop this model version's embeddings where the entry holds another's",
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"invalid configuration:\n{error}", file=sys.stderr)
        return 2

    engine = open_database(settings)
    try:
        sessions = session_factory(engine)
        embedder = load_embedder(settings)
        version = embedder.version
        registry = ReplicaRegistry(sessions, replica_id="reembed", model_version=version)
        slots = EmbeddingSlots(
            sessions,
            model_version=version,
            serving_versions=lambda: registry.serving_versions(settings.replica_silent_after_s),
        )
        if args.retire:
            return _retire(slots, args.retire)
        embed = crop_embedder(
            CropStore(settings.crop_store_dir),
            embedder.embed,
            embedder.card.config.input_size,
            settings.max_image_pixels,
        )
        lacking = sum(slots.lacking_census().values())
        log.info("%d entries to re-embed with model %s", lacking, version)
        written, missing, after = 0, [], 0
        while (filled := slots.fill(embed, after_id=after, limit=args.batch_size)) is not None:
            written += filled.written
            missing.extend(filled.unusable)
            after = filled.last_id
            log.info("%d of %d re-embedded", written, lacking)
        if missing and args.delete_missing:
            with sessions() as session:
                session.execute(delete(GalleryEntry).where(GalleryEntry.id.in_(missing)))
                change_log.append(session, missing)
                session.commit()
    finally:
        engine.dispose()
    if missing and not args.delete_missing:
        print(
            f"{len(missing)} entr{'y' if len(missing) == 1 else 'ies'} kept the old embedding "
            f"because the stored crop is missing or unreadable: ids {missing[:20]}"
            f"{' ...' if len(missing) > 20 else ''}. Delete them (DELETE /gallery/ID) or run "
            "again with --delete-missing.",
            file=sys.stderr,
        )
        return 1
    print(f"re-embedded {written} entries with model {version}")
    return 0


def _retire(slots: EmbeddingSlots, version: str) -> int:
    dropped, kept = slots.retire(version)
    print(f"dropped {dropped} embeddings of model {version}")
    if kept:
        print(
            f"{kept} entries hold only model {version}'s embedding and kept it: re-embed "
            "them with the serving model first (run this tool without --retire)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
