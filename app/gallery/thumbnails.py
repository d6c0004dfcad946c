"""Small JPEG copies of stored crops, rendered once and cached: ``ab/cd/<sha256>.<N>.jpg``.

A page of 50 entries should neither transfer 50 full crops nor decode them again on
every view, so a thumbnail is rendered on its first request and kept under
``<data dir>/thumbnails/``, keyed like the crops by the crop's content hash (and the
size). A thumbnail shows the person as much as the crop does, so it is erased with
it: deleting an entry or an identity deletes its thumbnails, and the orphan sweep
removes any whose crop no entry holds. A thumbnail rendered while its entry is being
deleted is removed by whichever of the two finishes last (see ``Thumbnails.get``), so
an erased person never keeps one.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Callable, Iterable
from enum import IntEnum
from pathlib import Path

from PIL import Image

from app.gallery.crops import CropStore, write_atomically
from model.preprocessing import decode_image

log = logging.getLogger(__name__)

_NAME = re.compile(r"^([0-9a-f]{64})\.(\d+)\.jpg$")
_QUALITY = 85


class ThumbnailSize(IntEnum):
    """The sides a thumbnail may fit inside: few, so the cache holds at most three per crop."""

    SMALL = 64
    MEDIUM = 128
    LARGE = 256


def render_thumbnail(crop: bytes, size: int) -> bytes:
    """JPEG of ``crop`` fitting inside size x size, aspect kept, never enlarged.

    The stored crop was validated when it was enrolled, so no pixel limit of ours
    applies again (Pillow's own decompression-bomb guard still does); it is decoded
    as the network saw it, EXIF orientation applied.
    """
    image = decode_image(crop, max_pixels=sys.maxsize)
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=_QUALITY)
    return buffer.getvalue()


class Thumbnails:
    def __init__(self, root: Path, crops: CropStore) -> None:
        self.root = root
        self._crops = crops
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str, size: int) -> Path:
        crop = self._crops.path_for(sha256)  # validates the digest
        return self.root / crop.parent.parent.name / crop.parent.name / f"{sha256}.{size}.jpg"

    def get(
        self, sha256: str, size: ThumbnailSize, still_held: Callable[[str], bool]
    ) -> bytes | None:
        """The cached thumbnail, else rendered from the crop and cached.

        Raises FileNotFoundError when the crop is gone and ImageDecodeError when it no
        longer decodes. Returns None when ``still_held(sha256)`` says, after the file was
        written, that no entry holds the crop any more: a deletion committed meanwhile
        may have removed the thumbnails before this one was written, so it is removed
        here. (A deletion committed after that check removes it itself.)
        """
        path = self.path_for(sha256, int(size))
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        data = render_thumbnail(self._crops.get(sha256), int(size))
        try:
            write_atomically(path, data)
        except OSError as error:  # a cache that cannot be written still serves the thumbnail
            log.warning("could not cache thumbnail %s: %s", path.name, error)
            return data
        if not still_held(sha256):
            path.unlink(missing_ok=True)
            return None
        return data

    def delete(self, sha256s: Iterable[str]) -> int:
        """Remove every size of each crop's thumbnail; returns how many files were removed."""
        removed = 0
        for sha256 in sha256s:
            for size in ThumbnailSize:
                try:
                    self.path_for(sha256, size).unlink()
                    removed += 1
                except FileNotFoundError:
                    continue
                except OSError as error:  # the sweep at the next start-up retries it
                    log.warning("could not delete thumbnail of %s: %s", sha256, error)
        return removed

    def sweep_orphans(self, known: Callable[[list[str]], set[str]]) -> int:
        """Delete thumbnails of crops no entry holds (left by a crash, or a failed delete).

        Unlike a crop, a thumbnail is only written for a committed entry, so no age
        margin is needed: one whose crop no entry holds belongs to nobody.
        """
        removed = 0
        batch: list[tuple[str, Path]] = []

        def flush() -> None:
            nonlocal removed
            referenced = known(sorted({sha256 for sha256, _ in batch}))
            for sha256, path in batch:
                if sha256 not in referenced:
                    path.unlink(missing_ok=True)
                    removed += 1
            batch.clear()

        for path in self.root.glob("*/*/*.jpg"):
            if match := _NAME.match(path.name):
                batch.append((match.group(1), path))
                if len(batch) >= 1000:
                    flush()
        if batch:
            flush()
        if removed:
            log.info("removed %d orphaned thumbnail(s)", removed)
        return removed
