"""Does a checkpoint's calibration keep its FPIR on real people, at several gallery sizes?

    .venv/bin/python -m training.evaluate --checkpoint RUN/best --data-dir MARKET \\
        --save-features RUN/test_features.npz
    .venv/bin/python benchmarks/open_set_market.py --checkpoint RUN/best \\
        --features RUN/test_features.npz --sizes 50,200,375,700 --seeds 0,1,2,3,4

The calibration in the card was fitted on training identities held out of training
(``calibration_fraction``), so the test identities are people it never saw. For each
gallery size N, N test identities are enrolled (a seeded choice) and the queries of the
others are the non-mated probes, scored the way ``POST /query`` scores (best entry per
identity; ``0000`` distractors left out, same-camera entries of a mated probe's own
identity excluded). The card's threshold for each target FPIR at that N is applied and
the observed FPIR and FNIR are reported, averaged over the seeds, as JSON lines. The
threshold is asked for the enrolled identities' mean entries too (the entries model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from model.checkpoint import CheckpointError, read_model_card
from model.evaluation.open_set import (
    FPIR_TARGETS,
    entries_per_enrolled_identity,
    split_open_set,
    withhold_identities,
)
from training.feature_files import load_feature_file
from training.open_set_report import query_identity_scores


def integer_list(text: str) -> list[int]:
    """argparse type: comma-separated non-negative integers (also used by calibration_crossval)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="its card's calibration")
    parser.add_argument("--features", type=Path, required=True, help="training.evaluate .npz")
    parser.add_argument("--sizes", type=integer_list, default=[50, 200, 375, 700])
    parser.add_argument("--seeds", type=integer_list, default=[0, 1, 2, 3, 4])
    args = parser.parse_args(argv)
    try:
        calibration = read_model_card(args.checkpoint).calibration
    except CheckpointError as error:
        parser.error(f"--checkpoint: {error}")
    if calibration is None:
        parser.error(f"--checkpoint: {args.checkpoint} has no calibration in its card")
    try:
        arrays = load_feature_file(args.features)
    except ValueError as error:
        parser.error(f"--features: {error}")
    gallery_pids, scores = query_identity_scores(arrays)
    identities = len(np.unique(gallery_pids))
    for size in args.sizes:
        if not 0 < size < identities:
            parser.error(f"--sizes: {size} is not between 1 and {identities - 1}")
        rows: dict[float, list[tuple[float, float, float, int]]] = {t: [] for t in FPIR_TARGETS}
        for seed in args.seeds:
            withheld = withhold_identities(
                gallery_pids, (identities - size) / identities, seed=seed
            )
            split = split_open_set(scores, arrays["query_pids"], withheld)
            entries = entries_per_enrolled_identity(gallery_pids, withheld)
            for target in FPIR_TARGETS:
                threshold = calibration.threshold_for(target, split.gallery_identities, entries)
                rows[target].append(
                    (
                        threshold,
                        float(split.fpir(threshold)),
                        float(split.fnir(threshold)),
                        len(split.nonmated_scores),
                    )
                )
        for target, measured in rows.items():
            thresholds, fpirs, fnirs, probes = np.array(measured).T
            print(
                json.dumps(
                    {
                        "gallery_identities": size,
                        "target_fpir": target,
                        "threshold": round(float(thresholds.mean()), 4),
                        "observed_fpir": round(float(fpirs.mean()), 5),
                        "observed_over_target": round(float(fpirs.mean()) / target, 2),
                        "fnir": round(float(fnirs.mean()), 4),
                        "nonmated_probes": int(probes.mean()),
                        "resolvable": bool(probes.mean() * target >= 1.0),
                        "seeds": len(args.seeds),
                    }
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
