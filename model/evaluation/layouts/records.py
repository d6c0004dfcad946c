"""What every dataset layout reads into: image records, the three splits, what was dropped.

Each layout module (market, duke, msmt17, cuhk03, folder) turns a folder on disk
into one `DatasetSplits`, so the trainer, the evaluator, the dataset checker and
the service never need to know which benchmark a crop came from. Only names,
folders and list files are inspected here, never pixels: the service validates
uploads with these parsers before decoding anything, and whether an image
decodes is the dataset's (or the checker's) job.

Identity numbers keep one meaning across layouts: ``-1`` is junk (a bad
detection the protocol ignores), ``0`` is a distractor (a person who is in no
query), every other pid is a real identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

JUNK_PID = -1
DISTRACTOR_PID = 0
UNKNOWN_CAMERA = 0
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
MAX_LISTED = 5


class DatasetLayoutError(ValueError):
    """The folder is not laid out, or its files not named, as the chosen layout expects."""


@dataclass(frozen=True)
class ImageRecord:
    """One crop on disk and who/where it shows; camera 0 means "unknown"."""

    path: Path
    pid: int
    camid: int


@dataclass(frozen=True)
class DatasetSplits:
    """The splits one layout read, each sorted as on disk, and what it left out.

    ``query`` and ``gallery`` are empty for layouts without an evaluation split
    (the identity-folder layout). ``junk`` counts the pid ``-1`` crops dropped
    from every split; ``not_images`` the files skipped because they are not
    images at all (Market-1501 ships a ``Thumbs.db`` in every folder).
    ``separate_test_pids`` is True where the test identities are numbered
    independently of the training ones (MSMT17), so equal pids across train and
    test do not mean the same person.
    """

    layout: str
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    junk: int = 0
    not_images: int = 0
    separate_test_pids: bool = False

    def summary(self) -> dict[str, dict[str, int]]:
        """Image, identity and camera counts per split, e.g. for a model card."""
        return {
            "train": summarize_records(self.train),
            "query": summarize_records(self.query),
            "gallery": summarize_records(self.gallery),
        }


def summarize_records(records: list[ImageRecord]) -> dict[str, int]:
    """Count images, distinct identities and distinct cameras in ``records``."""
    return {
        "images": len(records),
        "identities": len({record.pid for record in records}),
        "cameras": len({record.camid for record in records}),
    }


def has_image_suffix(path: Path) -> bool:
    """Whether ``path`` is named like an image this project reads (any case of the suffix)."""
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class FolderListing:
    """The image files directly in one folder (sorted) and how many other files it held."""

    images: list[Path]
    not_images: int


def list_folder(folder: Path) -> FolderListing:
    """Split a folder's files into images and the rest; sub-folders are not files and not counted.

    Hidden files count as not-images: ``._0001.jpg`` (macOS resource forks) look like
    images by name but are not crops.
    """
    images: list[Path] = []
    others = 0
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        if has_image_suffix(path):
            images.append(path)
        else:
            others += 1
    return FolderListing(images=images, not_images=others)


def listed(names: list[str]) -> str:
    """Up to `MAX_LISTED` names and how many more, for error messages that show examples."""
    shown = ", ".join(names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def check_directory(root: Path, what: str) -> Path:
    """``root`` as a Path, or a `DatasetLayoutError` saying it is missing or a file."""
    root = Path(root)
    if not root.exists():
        raise DatasetLayoutError(f"{what} {root} does not exist")
    if not root.is_dir():
        raise DatasetLayoutError(f"{what} {root} is not a directory")
    return root
