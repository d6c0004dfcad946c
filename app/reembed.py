"""Re-embed the gallery with the configured model: ``python -m app.reembed``.

After REID_MODEL_PATH changes, stored embeddings come from the old model and
cannot be compared with new queries; the service refuses to mix them (409
``model_version_mismatch``). This reads every stored crop of an entry made by
another model, embeds it with the configured one (same settings as the
service, so run it with the service's environment) and updates the row. Rows
are committed in batches, so an interrupted run can simply be started again.
Stop the service first, or restart it afterwards: it rebuilds its index from
the re-embedded rows.

Exit status: 0 when every entry now matches the model; 1 when some crops
were missing (listed; delete those entries, or pass --delete-missing); 2 on a
usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np
import torch
from pydantic import ValidationError
from sqlalchemy import func, select
from tqdm import tqdm

import model  # noqa: F401  (torchvision shim)
from app.crops import CropStore
from app.db import open_database, session_factory
from app.inference import load_embedder
from app.orm import GalleryEntry
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
        sessions = session_factory(engine)
        crops = CropStore(settings.crops_dir)
        version = embedder.version
        with sessions() as session:
            total = session.scalar(
                select(func.count()).where(GalleryEntry.model_version != version)
            )
        log.info("%d entries to re-embed with model %s", total, version)
        missing: list[int] = []
        last_id = 0
        with tqdm(total=total, unit="crop", file=sys.stderr) as progress:
            while True:
                with sessions() as session:
                    rows = session.scalars(
                        select(GalleryEntry)
                        .where(GalleryEntry.model_version != version, GalleryEntry.id > last_id)
                        .order_by(GalleryEntry.id)
                        .limit(args.batch_size)
                    ).all()
                    if not rows:
                        break
                    last_id = rows[-1].id
                    tensors, ready = [], []
                    for row in rows:
                        try:
                            image = decode_image(
                                crops.get(row.sha256), max_pixels=settings.max_image_pixels
                            )
                        except (OSError, ImageDecodeError) as error:
                            log.error("entry %d: crop unusable (%s)", row.id, error)
                            missing.append(row.id)
                            if args.delete_missing:
                                session.delete(row)
                            continue
                        tensors.append(preprocess(image))
                        ready.append(row)
                    if ready:
                        vectors = embedder.embed(torch.stack(tensors))
                        for row, vector in zip(ready, vectors, strict=True):
                            row.embedding = np.asarray(vector, dtype=np.float32).tobytes()
                            row.embedding_dim = int(vector.shape[0])
                            row.model_version = version
                    session.commit()
                    progress.update(len(rows))
    finally:
        engine.dispose()
    # Any snapshot describes the old vectors; the service would rebuild anyway.
    settings.snapshot_path.unlink(missing_ok=True)
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
