"""From a dataset folder to the DataLoaders a run needs.

Training batches are P identities × K images (batch-hard triplet mining needs
several images of each identity in every batch); evaluation walks the query and
gallery splits in order, and so does the calibration split: training identities held
out of training so the open-set thresholds are measured on people the network never saw.
On CUDA, decoding and augmentation run in persistent,
prefetching worker processes with pinned memory, so the GPU is not left waiting
on JPEG decoding between steps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from model.evaluation.layouts.catalogue import read_layout
from model.evaluation.layouts.market import load_market1501
from model.evaluation.layouts.records import ImageRecord
from model.preprocessing import normalize_uint8
from training import distributed
from training.config import TrainConfig
from training.data.dataset import ReIDImageDataset
from training.data.decoded import DecodedCropDataset, TrainAugmentation
from training.data.joint import JointPart, combine_training_sets
from training.data.synthetic import MANIFEST_NAME, generate_synthetic_market
from training.sampler import IdentityBatchSampler
from training.transforms import build_eval_transform, build_train_transform

EVAL_BATCH_SIZE = 128
MIN_CALIBRATION_IDENTITIES = 2  # a probe needs someone other than its own identity


class DataSetupError(ValueError):
    """The dataset folder is readable but cannot feed this run (e.g. too few identities)."""


@dataclass
class DataPipeline:
    """The loaders of one run plus the records behind them (only readable images)."""

    root: Path  # the first dataset's, whose query/gallery is evaluated
    layout: str
    parts: list[JointPart]  # every dataset trained on, with its pid/camera offsets
    synthetic: bool
    num_classes: int
    batch_sampler: IdentityBatchSampler
    train_loader: DataLoader
    query_loader: DataLoader | None  # None: nothing to evaluate on
    gallery_loader: DataLoader | None
    train_records: Sequence[ImageRecord]
    query_records: Sequence[ImageRecord]  # row i of the query features
    gallery_records: Sequence[ImageRecord]  # row i of the gallery features
    skipped_images: int
    eval_root: Path | None
    calibration_loader: DataLoader | None = None  # None: no identities held out
    calibration_records: Sequence[ImageRecord] = ()
    calibration_note: str | None = None  # why nothing was held out although asked

    @property
    def can_evaluate(self) -> bool:
        return self.query_loader is not None and self.gallery_loader is not None

    def set_epoch(self, epoch: int) -> None:
        """Pick the epoch's batch plan, identically on every rank (and on resume)."""
        self.batch_sampler.set_epoch(epoch)

    def describe(self) -> dict[str, Any]:
        """Dataset provenance for the model card."""
        record: dict[str, Any] = {
            "dataset": "synthetic-market" if self.synthetic else self.layout,
            "root": str(self.root),
            "datasets": [part.describe() for part in self.parts],
            "eval_root": str(self.eval_root) if self.eval_root else None,
            "train_identities": self.num_classes,
            "train_images": len(self.train_records),
            "query_images": len(self.query_records),
            "gallery_images": len(self.gallery_records),
            "skipped_images": self.skipped_images,
            "calibration_identities": len({record.pid for record in self.calibration_records}),
            "calibration_images": len(self.calibration_records),
        }
        manifest = self.root / MANIFEST_NAME
        if self.synthetic and manifest.is_file():
            record["synthetic"] = json.loads(manifest.read_text(encoding="utf-8"))
        return record


def resolve_datasets(
    config: TrainConfig, context: distributed.DistributedContext
) -> list[tuple[str, Path]]:
    """``(layout, root)`` of every dataset, generating the synthetic one first when asked to."""
    assert config.output_dir is not None
    if not config.synthetic:
        assert config.data_dir
        return config.datasets()
    root = config.data_dir[0] if config.data_dir else config.output_dir / "synthetic-data"
    if context.is_main and not (root / MANIFEST_NAME).is_file():
        try:
            generate_synthetic_market(
                root,
                num_train_ids=config.synthetic_train_ids,
                num_test_ids=config.synthetic_test_ids,
                num_cameras=config.synthetic_cameras,
                images_per_id_per_camera=config.synthetic_images_per_id_per_camera,
                seed=config.seed,
            )
        except (ValueError, FileExistsError) as error:
            raise DataSetupError(f"cannot generate synthetic data: {error}") from error
    distributed.barrier(context)
    return [("market", root)]


def build_data_pipeline(
    config: TrainConfig, context: distributed.DistributedContext, *, pin_memory: bool
) -> DataPipeline:
    """Read the dataset folder and build the loaders; `DataSetupError` if it cannot train."""
    datasets = resolve_datasets(config, context)
    root = datasets[0][1]
    all_train, query_records, gallery_records, parts = read_records(config, datasets)
    train_records, calibration_records, note = hold_out_identities(
        all_train, config.calibration_fraction, seed=config.seed
    )
    try:
        train_set = make_dataset(train_records, config, train=True)
        query_set = gallery_set = calibration_set = None
        if calibration_records:
            calibration_set = make_dataset(calibration_records, config)
        if query_records and gallery_records:
            query_set = make_dataset(query_records, config)
            gallery_set = make_dataset(gallery_records, config)
        # Every rank plans the same epoch from (seed, epoch) and takes its own share.
        sampler = IdentityBatchSampler(
            train_set.labels,
            identities_per_batch=config.batch_p,
            instances_per_identity=config.batch_k,
            seed=config.seed,
            rank=context.rank,
            world_size=context.world_size,
        )
    except ValueError as error:  # EmptyDatasetError, fewer identities than P
        raise DataSetupError(f"cannot train on {root}: {error}") from error
    if len(sampler) == 0:
        raise DataSetupError(
            f"{root} gives no complete {config.batch_p}x{config.batch_k} batch per "
            f"{'rank' if context.enabled else 'epoch'}; lower --batch-p/--batch-k"
        )
    options: dict[str, Any] = {"num_workers": config.workers, "pin_memory": pin_memory}
    if config.workers > 0:
        options |= {"persistent_workers": True, "prefetch_factor": 4}
    train_loader = DataLoader(
        train_set,
        batch_sampler=sampler,
        # Distinct augmentation streams per rank; identical across runs with one seed.
        generator=torch.Generator().manual_seed(config.seed + 100_003 * context.rank),
        **options,
    )
    eval_sets = [s for s in (query_set, gallery_set) if s is not None]
    query_loader, gallery_loader = (
        [DataLoader(s, batch_size=EVAL_BATCH_SIZE, **options) for s in eval_sets]
        if eval_sets
        else [None, None]
    )
    calibration_loader = (
        DataLoader(calibration_set, batch_size=EVAL_BATCH_SIZE, num_workers=config.workers)
        if calibration_set is not None
        else None
    )
    return DataPipeline(
        root=root,
        layout="+".join(part.layout for part in parts),
        parts=parts,
        synthetic=config.synthetic,
        num_classes=train_set.num_classes,
        batch_sampler=sampler,
        train_loader=train_loader,
        query_loader=query_loader,
        gallery_loader=gallery_loader,
        train_records=train_set.records,
        query_records=query_set.records if query_set else [],
        gallery_records=gallery_set.records if gallery_set else [],
        skipped_images=sum(
            len(s.skipped) for s in (train_set, *eval_sets, calibration_set) if s is not None
        ),
        eval_root=config.eval_dir or (root if query_set is not None else None),
        calibration_loader=calibration_loader,
        calibration_records=calibration_set.records if calibration_set else [],
        calibration_note=note,
    )


def make_dataset(
    records: Sequence[ImageRecord], config: TrainConfig, *, train: bool = False
) -> ReIDImageDataset:
    """The training (relabelled, augmented) or evaluation dataset over ``records``.

    With ``decode_once`` every crop is decoded and resized once and kept in memory
    (`DecodedCropDataset`); otherwise each is read from disk whenever it is drawn.
    """
    size = config.model_config(num_classes=1).input_size
    if config.decode_once:
        augment = TrainAugmentation(erasing_probability=config.random_erasing)
        return DecodedCropDataset(
            records, size, augment if train else normalize_uint8, relabel=train
        )
    transform = (
        build_train_transform(size, erasing_probability=config.random_erasing)
        if train
        else build_eval_transform(size)
    )
    return ReIDImageDataset(records, transform, relabel=train)


def hold_out_identities(
    records: Sequence[ImageRecord], fraction: float, *, seed: int
) -> tuple[list[ImageRecord], list[ImageRecord], str | None]:
    """Split training records into (train, calibration) by identity, seeded.

    ``round(fraction * identities)`` identities are held out. When that is fewer than
    ``MIN_CALIBRATION_IDENTITIES`` nothing is held out (a calibration needs a probe's
    scores against identities other than its own) and the returned note says so, to be
    shown to the user.
    """
    if fraction == 0:
        return list(records), [], None
    pids = sorted({record.pid for record in records})
    count = round(fraction * len(pids))
    if count < MIN_CALIBRATION_IDENTITIES:
        return (
            list(records),
            [],
            f"calibration_fraction {fraction} of {len(pids)} training identities is "
            f"{count}, fewer than {MIN_CALIBRATION_IDENTITIES}: nothing is held out and the "
            "model cards get no open-set calibration",
        )
    rng = np.random.default_rng([seed, len(pids)])
    held_out = set(rng.choice(pids, size=count, replace=False).tolist())
    return (
        [record for record in records if record.pid not in held_out],
        [record for record in records if record.pid in held_out],
        None,
    )


def read_records(
    config: TrainConfig, datasets: list[tuple[str, Path]]
) -> tuple[list[ImageRecord], list[ImageRecord], list[ImageRecord], list[JointPart]]:
    """Train, query and gallery records; query/gallery are empty when there is no eval set.

    Every dataset's training split is joined, with pids and cameras offset so that
    they never collide (`combine_training_sets`). The first dataset's own
    query/gallery split is evaluated unless ``eval_dir`` names a Market-1501
    folder; an identity-folder dataset has no such split, so it is evaluated
    only through ``eval_dir``.
    """
    read = [(layout, root, read_layout(layout, root)) for layout, root in datasets]
    train, parts = combine_training_sets([(layout, root, s.train) for layout, root, s in read])
    first = read[0][2]
    query, gallery = first.query, first.gallery
    if config.eval_dir is not None:
        held_out = load_market1501(config.eval_dir)
        query, gallery = held_out.query, held_out.gallery
    return train, query, gallery, parts
