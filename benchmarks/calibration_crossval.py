"""Does the calibration method keep its promise when nothing but the people differ?

    .venv/bin/python -m training.evaluate --checkpoint RUN/best --data-dir MARKET \\
        --save-features F.npz
    .venv/bin/python benchmarks/calibration_crossval.py --features F.npz \\
        --calibration-identities 75 --repeats 36

`open_set_market.py` checks a card calibrated on held-out *training* identities against
the *test* identities, so it measures the method and the shift between two populations
at once. This one takes the shift away. The test identities of F.npz (crops of the
checkpoint's own test split, ``0000`` distractors left out) are split at random, each
repeat anew: ``--calibration-identities`` of them are labelled and calibrated on with
`calibrate_labelled_set` (the plain fit), exactly as ``training.calibrate`` would, and the
others are the population the promise is checked on: for each of ``--sizes``, four
seeded galleries of that many of them (their gallery-folder crops) are probed by the query
crops of all the rest. The observed FPIR at ``threshold_for(target, N, entries)`` over the
target is printed per repeat, size and target as JSON lines, then one summary line per
size and target: the median ratio and how many repeats kept it within [0.5, 2], above 2
(promise broken) and below 0.5 (too strict).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from open_set_market import integer_list

from model.evaluation.calibration import Calibration, CalibrationError
from model.evaluation.labelled_calibration import calibrate_labelled_set
from model.evaluation.open_set import FPIR_TARGETS, identity_scores
from training.feature_files import load_feature_file

GALLERY_DRAWS = 4


def _people(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The labelled test crops: query and gallery, without distractors and junk."""
    query = arrays["query_pids"] > 0
    gallery = arrays["gallery_pids"] > 0
    return {
        "query_features": arrays["query_features"][query],
        "query_pids": arrays["query_pids"][query],
        "gallery_features": arrays["gallery_features"][gallery],
        "gallery_pids": arrays["gallery_pids"][gallery],
    }


def _calibrate(people: dict[str, np.ndarray], chosen: np.ndarray, seed: int) -> Calibration:
    in_query = np.isin(people["query_pids"], chosen)
    in_gallery = np.isin(people["gallery_pids"], chosen)
    features = np.concatenate(
        [people["query_features"][in_query], people["gallery_features"][in_gallery]]
    )
    pids = np.concatenate([people["query_pids"][in_query], people["gallery_pids"][in_gallery]])
    return calibrate_labelled_set(features, pids, seed=seed, confidence=None)


def _observed(
    people: dict[str, np.ndarray], calibration: Calibration, rest: np.ndarray, size: int, seed: int
) -> dict[float, float]:
    """Mean observed FPIR ÷ target over ``GALLERY_DRAWS`` galleries of ``size`` of ``rest``."""
    ratios: dict[float, list[float]] = defaultdict(list)
    for draw in range(GALLERY_DRAWS):
        enrolled = np.random.default_rng([seed, draw]).choice(rest, size, replace=False)
        entries = np.isin(people["gallery_pids"], enrolled)
        probes = np.isin(people["query_pids"], np.setdiff1d(rest, enrolled))
        best = identity_scores(
            people["query_features"][probes],
            people["gallery_features"][entries],
            people["gallery_pids"][entries],
        ).scores.max(axis=1)
        per_identity = entries.sum() / size
        for target in FPIR_TARGETS:
            threshold = calibration.threshold_for(target, size, per_identity)
            ratios[target].append(float((best >= threshold).mean()) / target)
    return {target: float(np.mean(values)) for target, values in ratios.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="training.evaluate .npz")
    parser.add_argument("--calibration-identities", type=int, default=75)
    parser.add_argument("--sizes", type=integer_list, default=[50, 200])
    parser.add_argument("--repeats", type=int, default=36)
    args = parser.parse_args(argv)
    try:
        people = _people(load_feature_file(args.features))
    except ValueError as error:
        parser.error(str(error))
    identities = np.intersect1d(people["query_pids"], people["gallery_pids"])
    largest = len(identities) - args.calibration_identities - 1
    if min(args.sizes) < 1:
        parser.error(f"--sizes: a gallery needs at least one identity, got {min(args.sizes)}")
    if args.calibration_identities < 2 or largest < max(args.sizes):
        parser.error(
            f"{len(identities)} test identities cannot give {args.calibration_identities} "
            f"to calibrate on and galleries of {max(args.sizes)} with strangers left to probe"
        )
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    summary: dict[tuple[int, float], list[float]] = defaultdict(list)
    for repeat in range(args.repeats):
        order = np.random.default_rng(repeat).permutation(identities)
        chosen, rest = order[: args.calibration_identities], order[args.calibration_identities :]
        try:
            calibration = _calibrate(people, chosen, repeat)
        except CalibrationError as error:
            parser.error(f"cannot calibrate on {args.calibration_identities} identities: {error}")
        for size in args.sizes:
            for target, ratio in _observed(people, calibration, rest, size, repeat).items():
                summary[(size, target)].append(ratio)
                row = {"repeat": repeat, "gallery_identities": size, "target_fpir": target}
                print(json.dumps(row | {"observed_over_target": round(ratio, 3)}), flush=True)
    for (size, target), ratios in sorted(summary.items()):
        values = np.asarray(ratios)
        print(
            json.dumps(
                {
                    "summary": True,
                    "calibration_identities": args.calibration_identities,
                    "gallery_identities": size,
                    "target_fpir": target,
                    "median_over_target": round(float(np.median(values)), 3),
                    "within_2x": int(((values >= 0.5) & (values <= 2.0)).sum()),
                    "above_2x": int((values > 2.0).sum()),
                    "below_half": int((values < 0.5).sum()),
                    "repeats": len(values),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
