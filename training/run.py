"""Train the attentive re-identification network: ``python -m training.run``.

    python -m training.run --preset cpu-synthetic --synthetic --output-dir runs/demo
    python -m training.run --preset market1501-resnet50 --data-dir ~/data/Market-1501 \\
        --output-dir runs/market --pretrained ~/weights/resnet50.pth
    torchrun --nproc-per-node 4 -m training.run --preset market1501-resnet50 ...

A run directory ends up holding ``best/`` and ``last/`` model checkpoints (what
``model.checkpoint.load_checkpoint`` and the service read), ``resume/`` (what
``--resume`` continues from), ``metrics.jsonl``/``metrics.csv``, ``config.json``
and the plots ``cmc.png``, ``attention.png`` and ``ranked_lists.png``.

Everything that can be checked before the first batch (flags, preset, dataset
layout, resume state, pretrained weights file) is, and a problem is reported as
a usage error (exit status 2) naming what was expected, never as a traceback.

This module only sequences a run: flags to config (`training.run_cli`), then
what must exist before the first epoch (`training.run_setup`), then the epoch
loop (`training.run_loop`), each of which can be read and tested on its own.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from model.backbone import PretrainedWeightsError
from model.checkpoint import CheckpointError
from model.evaluation.layouts.records import DatasetLayoutError
from training import distributed
from training.checkpointing import ResumeError
from training.engine import TrainingDivergedError
from training.loaders import DataSetupError
from training.run_cli import build_parser, parse_config
from training.run_loop import fit
from training.run_setup import prepare
from training.usage import UsageError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m training.run`` and programmatic use."""
    parser = build_parser()
    config = parse_config(argv, parser)
    started = time.perf_counter()
    try:
        state = prepare(config)
    except (
        UsageError,
        DatasetLayoutError,
        DataSetupError,
        ResumeError,
        CheckpointError,
        PretrainedWeightsError,
    ) as error:
        parser.error(str(error))
    try:
        progress = fit(state)
    except TrainingDivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        distributed.shutdown(state.context)
    if state.context.is_main:
        elapsed = time.perf_counter() - started
        print(
            f"done in {elapsed:.0f}s: best mAP {max(progress.best_map, 0.0):.4f} "
            f"at epoch {progress.best_epoch}; checkpoints in {config.output_dir}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
