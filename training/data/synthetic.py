"""Write a small Market-1501-layout dataset of drawn people, deterministically.

Tests, the ``cpu-synthetic`` training preset and the service demo all need
re-identification data without a download. The generator writes exactly the
layout ``model.evaluation.layouts.market.load_market1501`` reads, including the
awkward parts of the real benchmark: identities seen by only some cameras,
``0000`` distractors in the gallery and ``-1`` junk crops.

Every random choice comes from a numpy Generator keyed by the seed and what is
being drawn (an identity's look, a camera's style, or one crop keyed by
``(pid, camid, index)``), so a crop's bytes never depend on generation order or
on how many other identities were requested alongside it.

Usage::

    python -m training.data.synthetic OUT_DIR --train-ids 60 --test-ids 40 --seed 0
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from model.evaluation.layouts.records import DISTRACTOR_PID, JUNK_PID
from model.evaluation.layouts.split_folders import GALLERY_FOLDER, QUERY_FOLDER, TRAIN_FOLDER
from training.data.appearance import (
    Appearance,
    CameraStyle,
    appearance_from_rng,
    camera_from_rng,
)
from training.data.rendering import render_crop, render_crop_with_silhouette, render_fragment

MANIFEST_NAME = "synthetic_market.json"
MAX_CAMERAS = 9  # Market-1501 tools commonly read the camera as one digit.
MAX_IDENTITIES = 9999  # Identities are written as four digits.
JPEG_QUALITY = 90

# Separate key namespaces so, e.g., identity 3's look and camera 3's style never
# share a random stream.
_IDENTITY, _CAMERA, _IMAGE, _DISTRACTOR, _JUNK, _SPLIT = range(1, 7)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


@functools.lru_cache(maxsize=4096)
def identity_appearance(pid: int, seed: int = 0) -> Appearance:
    """The fixed look of identity ``pid`` (>= 1) under ``seed``."""
    return appearance_from_rng(_rng(seed, _IDENTITY, pid))


@functools.lru_cache(maxsize=256)
def camera_style(camid: int, seed: int = 0) -> CameraStyle:
    """The fixed nuisance of camera ``camid`` (>= 1) under ``seed``."""
    return camera_from_rng(_rng(seed, _CAMERA, camid))


def render_person(pid: int, camid: int, rng: np.random.Generator, *, seed: int = 0) -> Image.Image:
    """One crop of identity ``pid`` seen by camera ``camid``.

    The identity's look and the camera's style come from ``seed``; ``rng`` only
    supplies what changes from crop to crop (pose, framing, light flicker, noise).
    """
    return render_crop(identity_appearance(pid, seed), camera_style(camid, seed), rng)


def render_person_with_silhouette(
    pid: int, camid: int, rng: np.random.Generator, *, seed: int = 0
) -> tuple[Image.Image, np.ndarray]:
    """`render_person`'s crop (the same one, for the same ``rng``) and the person's pixels."""
    return render_crop_with_silhouette(
        identity_appearance(pid, seed), camera_style(camid, seed), rng
    )


def crop_rng(seed: int, pid: int, camid: int, index: int) -> np.random.Generator:
    """The random stream of identity ``pid``'s ``index``-th crop from camera ``camid``."""
    return _rng(seed, _IMAGE, pid, camid, index)


@dataclass(frozen=True)
class _Shot:
    """One file to write: which folder, which name, and what to draw."""

    folder: str
    pid: int
    camid: int
    index: int

    @property
    def name(self) -> str:
        pid = str(self.pid) if self.pid == JUNK_PID else f"{self.pid:04d}"
        return f"{pid}_c{self.camid}s1_{self.index:06d}_00.jpg"


def _camera_subset(seed: int, pid: int, num_cameras: int) -> tuple[list[int], list[int]]:
    """Cameras that see ``pid`` (at least two) and the ones its queries come from.

    Queries come from a strict subset so that, even with one crop per camera, every
    query has a true match from another camera left in the gallery.
    """
    rng = _rng(seed, _SPLIT, pid)
    count = int(rng.integers(2, num_cameras + 1))
    cameras = sorted(int(c) for c in rng.choice(np.arange(1, num_cameras + 1), count, False))
    query_count = int(rng.integers(1, count))
    query_cameras = sorted(int(c) for c in rng.choice(cameras, query_count, False))
    return cameras, query_cameras


def _plan(
    *,
    num_train_ids: int,
    num_test_ids: int,
    num_cameras: int,
    per_camera: int,
    seed: int,
    num_distractors: int,
    num_junk: int,
) -> list[_Shot]:
    shots: list[_Shot] = []
    for pid in range(1, num_train_ids + 1):
        cameras, _ = _camera_subset(seed, pid, num_cameras)
        shots += [
            _Shot(TRAIN_FOLDER, pid, cam, index) for cam in cameras for index in range(per_camera)
        ]
    for pid in range(num_train_ids + 1, num_train_ids + num_test_ids + 1):
        cameras, query_cameras = _camera_subset(seed, pid, num_cameras)
        for cam in cameras:
            for index in range(per_camera):
                in_query = cam in query_cameras and index == 0
                shots.append(_Shot(QUERY_FOLDER if in_query else GALLERY_FOLDER, pid, cam, index))
    extras = ((_DISTRACTOR, DISTRACTOR_PID, num_distractors), (_JUNK, JUNK_PID, num_junk))
    for kind, pid, count in extras:
        for index in range(count):
            camid = int(_rng(seed, kind, index).integers(1, num_cameras + 1))
            shots.append(_Shot(GALLERY_FOLDER, pid, camid, index))
    return shots


def _render_shot(shot: _Shot, seed: int) -> Image.Image:
    camera = camera_style(shot.camid, seed)
    if shot.pid == DISTRACTOR_PID:
        look = appearance_from_rng(_rng(seed, _DISTRACTOR, shot.index, 0))
        return render_crop(look, camera, _rng(seed, _DISTRACTOR, shot.index, 1))
    if shot.pid == JUNK_PID:
        look = appearance_from_rng(_rng(seed, _JUNK, shot.index, 0))
        rng = _rng(seed, _JUNK, shot.index, 1)
        return render_fragment(render_crop(look, camera, rng), rng)
    rng = crop_rng(seed, shot.pid, shot.camid, shot.index)
    return render_crop(identity_appearance(shot.pid, seed), camera, rng)


def validate_arguments(
    *,
    num_train_ids: int,
    num_test_ids: int,
    num_cameras: int,
    images_per_id_per_camera: int,
    seed: int,
    num_distractors: int,
    num_junk: int,
) -> None:
    """Raise ValueError naming the first argument that cannot give a usable dataset."""
    if num_train_ids < 1:
        raise ValueError(f"num_train_ids must be at least 1, got {num_train_ids}")
    if num_test_ids < 1:
        raise ValueError(f"num_test_ids must be at least 1, got {num_test_ids}")
    if num_train_ids + num_test_ids > MAX_IDENTITIES:
        raise ValueError(
            f"num_train_ids + num_test_ids must be at most {MAX_IDENTITIES} "
            f"(four-digit identities), got {num_train_ids + num_test_ids}"
        )
    if not 2 <= num_cameras <= MAX_CAMERAS:
        raise ValueError(
            f"num_cameras must be between 2 and {MAX_CAMERAS} (each identity needs two "
            f"cameras to be re-identified), got {num_cameras}"
        )
    if images_per_id_per_camera < 1:
        raise ValueError(
            f"images_per_id_per_camera must be at least 1, got {images_per_id_per_camera}"
        )
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if num_distractors < 0:
        raise ValueError(f"num_distractors must be non-negative, got {num_distractors}")
    if num_junk < 0:
        raise ValueError(f"num_junk must be non-negative, got {num_junk}")


def generate_synthetic_market(
    root: Path,
    *,
    num_train_ids: int,
    num_test_ids: int,
    num_cameras: int = 4,
    images_per_id_per_camera: int = 2,
    seed: int = 0,
    num_distractors: int | None = None,
    num_junk: int = 2,
) -> Path:
    """Write a Market-1501-layout dataset to ``root`` and return ``root``.

    Train identities are ``1..num_train_ids`` and test identities follow them, so
    the two never overlap. Each identity is seen by 2..``num_cameras`` cameras with
    ``images_per_id_per_camera`` crops each; for test identities one crop from some
    of those cameras becomes a query and the rest join the gallery, together with
    ``num_distractors`` (default: a quarter of the test identities, at least 2)
    ``0000`` crops of other people and ``num_junk`` ``-1`` fragments.

    The dataset is assembled in a sibling temporary folder and renamed into place,
    so an interrupted run never leaves a half-written ``root``. ``root`` must not
    exist or be an empty directory.
    """
    root = Path(root)
    if num_distractors is None:
        num_distractors = max(2, num_test_ids // 4)
    validate_arguments(
        num_train_ids=num_train_ids,
        num_test_ids=num_test_ids,
        num_cameras=num_cameras,
        images_per_id_per_camera=images_per_id_per_camera,
        seed=seed,
        num_distractors=num_distractors,
        num_junk=num_junk,
    )
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} already exists and is not an empty directory")
    shots = _plan(
        num_train_ids=num_train_ids,
        num_test_ids=num_test_ids,
        num_cameras=num_cameras,
        per_camera=images_per_id_per_camera,
        seed=seed,
        num_distractors=num_distractors,
        num_junk=num_junk,
    )
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for folder in (TRAIN_FOLDER, QUERY_FOLDER, GALLERY_FOLDER):
            (staging / folder).mkdir(parents=True)
        for shot in shots:
            image = _render_shot(shot, seed)
            image.save(staging / shot.folder / shot.name, format="JPEG", quality=JPEG_QUALITY)
        manifest = {
            "generator": "training.data.synthetic",
            "seed": seed,
            "num_train_ids": num_train_ids,
            "num_test_ids": num_test_ids,
            "num_cameras": num_cameras,
            "images_per_id_per_camera": images_per_id_per_camera,
            "num_distractors": num_distractors,
            "num_junk": num_junk,
            "train_pids": [1, num_train_ids],
            "test_pids": [num_train_ids + 1, num_train_ids + num_test_ids],
            "images": {
                folder: sum(shot.folder == folder for shot in shots)
                for folder in (TRAIN_FOLDER, QUERY_FOLDER, GALLERY_FOLDER)
            },
        }
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        if root.exists():
            root.rmdir()
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.data.synthetic",
        description="Write a synthetic Market-1501-layout re-identification dataset.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to create (must not exist or be empty)")
    parser.add_argument("--train-ids", type=int, default=60, help="training identities (60)")
    parser.add_argument("--test-ids", type=int, default=40, help="held-out identities (40)")
    parser.add_argument("--cameras", type=int, default=4, help="cameras, 2..9 (4)")
    parser.add_argument("--per-camera", type=int, default=2, help="crops per identity+camera (2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--distractors", type=int, default=None, help="0000 gallery crops (test ids / 4, min 2)"
    )
    parser.add_argument("--junk", type=int, default=2, help="-1 junk gallery crops (2)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        root = generate_synthetic_market(
            args.out_dir,
            num_train_ids=args.train_ids,
            num_test_ids=args.test_ids,
            num_cameras=args.cameras,
            images_per_id_per_camera=args.per_camera,
            seed=args.seed,
            num_distractors=args.distractors,
            num_junk=args.junk,
        )
    except (ValueError, FileExistsError) as error:
        parser.error(str(error))
    elapsed = time.perf_counter() - started
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    images = manifest["images"]
    print(
        f"wrote {sum(images.values())} images to {root} in {elapsed:.1f}s (seed {args.seed}):\n"
        f"  {TRAIN_FOLDER}/: {images[TRAIN_FOLDER]} images of identities "
        f"{manifest['train_pids'][0]}..{manifest['train_pids'][1]}\n"
        f"  {QUERY_FOLDER}/: {images[QUERY_FOLDER]} images of identities "
        f"{manifest['test_pids'][0]}..{manifest['test_pids'][1]}\n"
        f"  {GALLERY_FOLDER}/: {images[GALLERY_FOLDER]} images "
        f"(including {manifest['num_distractors']} distractors 0000 "
        f"and {manifest['num_junk']} junk -1)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
