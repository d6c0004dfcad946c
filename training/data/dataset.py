"""The torch Dataset over re-identification crops, tolerant of broken files.

Large crawled or exported datasets always contain a few truncated or mislabelled
files. One of them must not kill a multi-hour run at epoch 37, so every image is
decoded once up front (measured: about 0.2 ms for a 128×256 JPEG; a header-only
``verify()`` is 5× cheaper but accepted a JPEG cut in half, the most common
breakage). Unreadable files are dropped, counted in ``skipped``
and logged once; identities are relabelled afterwards so no class is left empty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from model.evaluation.layouts.records import ImageRecord
from model.preprocessing import ImageDecodeError, decode_image

logger = logging.getLogger(__name__)

Transform = Callable[[Image.Image], torch.Tensor]
_LOGGED_PATHS = 5


class EmptyDatasetError(ValueError):
    """None of the given records is a readable image."""


@dataclass(frozen=True)
class SkippedImage:
    """A record left out of the dataset and why."""

    path: Path
    reason: str


def _read_image(path: Path) -> Image.Image:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageDecodeError("unreadable_file", f"cannot read file: {error}") from error
    return decode_image(data)


class ReIDImageDataset(Dataset[tuple[torch.Tensor, int, int]]):
    """Crops as ``(image_tensor, label, camid)``.

    With ``relabel=True`` (training) the label is the identity's index in the
    sorted list of identities that have at least one readable crop, ``0..N-1``,
    as a classifier head needs; ``pid_to_label`` maps back. With ``relabel=False``
    (evaluation) the label is the original pid, so ``0`` distractors stay ``0``.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        transform: Transform,
        *,
        relabel: bool = True,
    ) -> None:
        self.transform = transform
        self.skipped: list[SkippedImage] = []
        usable: list[ImageRecord] = []
        for record in records:
            try:
                image = _read_image(record.path)
            except ImageDecodeError as error:
                self.skipped.append(SkippedImage(record.path, str(error)))
            else:
                self._admit(image)
                usable.append(record)
        if self.skipped:
            shown = "; ".join(f"{s.path} ({s.reason})" for s in self.skipped[:_LOGGED_PATHS])
            more = "; ..." if len(self.skipped) > _LOGGED_PATHS else ""
            logger.warning(
                "skipped %d unreadable images of %d: %s%s",
                len(self.skipped),
                len(records),
                shown,
                more,
            )
        if not usable:
            raise EmptyDatasetError(
                f"no usable images: {len(records)} record(s) given, "
                f"{len(self.skipped)} unreadable"
                + (
                    f" (first: {self.skipped[0].path}: {self.skipped[0].reason})"
                    if self.skipped
                    else ""
                )
            )
        self.records: list[ImageRecord] = usable
        pids = sorted({record.pid for record in usable})
        self.pid_to_label: dict[int, int] = (
            {pid: label for label, pid in enumerate(pids)}
            if relabel
            else {pid: pid for pid in pids}
        )
        self.labels: list[int] = [self.pid_to_label[record.pid] for record in usable]
        self.camids: list[int] = [record.camid for record in usable]

    def _admit(self, image: Image.Image) -> None:
        """Called with each readable crop's decoded image, in order; a subclass may keep it."""

    @property
    def num_classes(self) -> int:
        """Distinct identities among the usable crops."""
        return len(self.pid_to_label)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        """Load one crop; if it broke since construction, use a sibling of the same identity.

        Substituting keeps the batch's identity structure (and thus the P×K sampler's
        guarantee) intact; only when every crop of the identity is gone is it fatal.
        """
        record = self.records[index]
        try:
            image = _read_image(record.path)
        except ImageDecodeError as error:
            logger.warning(
                "image became unreadable, using another of its identity: %s (%s)",
                record.path,
                error,
            )
            self.skipped.append(SkippedImage(record.path, str(error)))
            image = self._sibling_image(index)
        return self.transform(image), self.labels[index], record.camid

    def _sibling_image(self, index: int) -> Image.Image:
        label = self.labels[index]
        broken = {skipped.path for skipped in self.skipped}
        for other, record in enumerate(self.records):
            if other != index and self.labels[other] == label and record.path not in broken:
                try:
                    return _read_image(record.path)
                except ImageDecodeError as error:
                    self.skipped.append(SkippedImage(record.path, str(error)))
                    broken.add(record.path)
        raise EmptyDatasetError(
            f"every image of identity {self.records[index].pid} is now unreadable "
            f"(first: {self.records[index].path})"
        )
