"""One training set from several datasets, with identities and cameras that never collide.

Every benchmark numbers its people and cameras from 1, so Market-1501's person 2
and DukeMTMC-reID's person 2 would become one class, and their camera 1s one
camera. Each dataset after the first is shifted past everything before it: pids
by one more than the largest pid so far, cameras by the largest camera so far.
The first dataset keeps its numbers, so a single-dataset run is unchanged, and
camera ``0`` (unknown) stays ``0`` everywhere because it is not a camera.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.evaluation.layouts.records import UNKNOWN_CAMERA, ImageRecord


@dataclass(frozen=True)
class JointPart:
    """Where one dataset's records landed in the joint training set."""

    layout: str
    root: Path
    images: int
    identities: int
    pid_offset: int
    camera_offset: int

    def describe(self) -> dict[str, Any]:
        """Provenance for the model card."""
        return {
            "layout": self.layout,
            "root": str(self.root),
            "train_images": self.images,
            "train_identities": self.identities,
            "pid_offset": self.pid_offset,
            "camera_offset": self.camera_offset,
        }


def combine_training_sets(
    datasets: Sequence[tuple[str, Path, Sequence[ImageRecord]]],
) -> tuple[list[ImageRecord], list[JointPart]]:
    """Concatenate ``(layout, root, train records)`` with per-dataset pid/camera offsets."""
    combined: list[ImageRecord] = []
    parts: list[JointPart] = []
    pid_offset = camera_offset = 0
    for index, (layout, root, records) in enumerate(datasets):
        if any(record.pid < 0 for record in records):
            raise ValueError(f"training records of {root} hold junk (pid < 0)")
        if index > 0:
            pid_offset = max((record.pid for record in combined), default=-1) + 1
            camera_offset = max((record.camid for record in combined), default=0)
        shifted = [
            ImageRecord(
                path=record.path,
                pid=record.pid + pid_offset,
                camid=record.camid + camera_offset
                if record.camid != UNKNOWN_CAMERA
                else UNKNOWN_CAMERA,
            )
            for record in records
        ]
        combined += shifted
        parts.append(
            JointPart(
                layout=layout,
                root=Path(root),
                images=len(records),
                identities=len({record.pid for record in records}),
                pid_offset=pid_offset,
                camera_offset=camera_offset,
            )
        )
    return combined, parts
