"""Re-embed the gallery with the configured model: ``python -m app.reembed``.

After REID_MODEL_PATH changes, stored embeddings come from the old model and
cannot be compared with new queries; the service refuses to mix them (409
``model_version_mismatch``). This reads every stored crop of an entry made by
another model, embeds it with the configured one (same settings as the
service, so run it with the service's environment) and updates the row. Rows
are committed in batches, so an interrupted run can simply be started again.
Each batch's commit is in the change log, so running replicas follow it. Rows
are read and written through the gallery's own store, so they are serialised
exactly as the service writes them.

Exit status: 0 when every entry now matches the model; 1 when some crops
were missing (listed; delete those entries, or pass --delete-missing); 2 on a
usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch
from pydantic import ValidationError
from tqdm import tqdm

import model  # noqa: F401  (torchvision shim)
from app.db.engine import open_database, session_factory
from app.gallery.crops import CropStore
from app.gallery.store import EntryStore
from app.inference.embedder import load_embedder
from app.settings import Settings
from model.preprocessing import ImageDecodeError, decode_image, preprocess

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
        embedder = load_embedder(settings)
        store = EntryStore(
            session_factory(engine), model_version=embedder.version, dim=embedder.dim
        )
        crops = CropStore(settings.crop_store_dir)
        version = embedder.version
        total = store.count_other_models()
        log.info("%d entries to re-embed with model %s", total, version)
        missing: list[int] = []
        last_id = 0
        with tqdm(total=total, unit="crop", file=sys.stderr) as progress:
            while rows := store.other_models_entries(after_id=last_id, limit=args.batch_size):
                last_id = rows[-1].id
                tensors, ready, unusable = [], [], []
                for row in rows:
                    try:
                        image = decode_image(
                            crops.get(row.sha256), max_pixels=settings.max_image_pixels
                        )
                    except (OSError, ImageDecodeError) as error:
                        log.error("entry %d: crop unusable (%s)", row.id, error)
                        unusable.append(row.id)
                        continue
                    tensors.append(preprocess(image, embedder.card.config.input_size))
                    ready.append(row.id)
                vectors = embedder.embed(torch.stack(tensors)) if tensors else []
                missing.extend(unusable)
                store.replace_embeddings(
                    dict(zip(ready, vectors, strict=True)),
                    deleted=unusable if args.delete_missing else [],
                )
                progress.update(len(rows))
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
    print(f"re-embedded {total - len(missing)} entries with model {version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
