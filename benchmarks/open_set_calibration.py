"""Does a calibrated threshold keep its FPIR at other gallery sizes? One command:

    .venv/bin/python benchmarks/open_set_calibration.py --seed 0

Generated embeddings, not images: each identity is a random centre in D dimensions and
each crop that centre plus noise, and every crop also gets a shared "generic look"
component of random strength, so a probe's scores against different identities are
correlated the way real ones are (the independence assumption does not hold). A
calibration is fitted on one population (``--calibration-identities``, via the same
`calibrate_labelled_set` that training uses), then galleries of other identities are
enrolled at each ``--sizes`` and probed by yet other, non-mated identities; the observed
FPIR at ``threshold_for(target, N)`` is printed beside the target, as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from model.evaluation.calibration_bootstrap import DEFAULT_CONFIDENCE
from model.evaluation.labelled_calibration import calibrate_labelled_set
from model.evaluation.open_set import FPIR_TARGETS, identity_scores
from training.calibrate import parse_confidence


def population(
    identities: int, images: int, generic: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(identities, images, dim) unit embeddings sharing the ``generic`` direction."""
    dim = len(generic)
    centres = rng.normal(size=(identities, 1, dim))
    noise = rng.normal(scale=0.9, size=(identities, images, dim))
    strength = rng.uniform(0.0, 1.5, size=(identities, images, 1))
    features = centres + noise + strength * generic
    return (features / np.linalg.norm(features, axis=2, keepdims=True)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--images", type=int, default=4, help="crops per identity")
    parser.add_argument("--calibration-identities", type=int, default=600)
    parser.add_argument("--sizes", default="50,200,750")
    parser.add_argument("--nonmated-identities", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--confidence", type=parse_confidence, default=DEFAULT_CONFIDENCE, help="or 'none'"
    )
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    sizes = [int(size) for size in args.sizes.split(",")]
    generic = rng.normal(size=args.dim)  # one population: every crop shares this direction
    calibration_set = population(args.calibration_identities, args.images, generic, rng)
    pids = np.repeat(np.arange(args.calibration_identities), args.images)
    calibration = calibrate_labelled_set(
        calibration_set.reshape(-1, args.dim), pids, seed=args.seed, confidence=args.confidence
    )
    print(json.dumps({"calibration_counts": dict(calibration.counts),
                      "size_scale": calibration.size_scale,
                      "size_exponent": calibration.size_exponent}))  # fmt: skip
    for size in sizes:
        observed = {target: [] for target in FPIR_TARGETS}
        for _ in range(args.repeats):
            gallery = population(size, 2, generic, rng).reshape(-1, args.dim)
            probes = population(args.nonmated_identities, 2, generic, rng).reshape(-1, args.dim)
            best = identity_scores(probes, gallery, np.repeat(np.arange(size), 2)).scores.max(1)
            for target in FPIR_TARGETS:
                threshold = calibration.threshold_for(target, size)
                observed[target].append(float((best >= threshold).mean()))
        for target, values in observed.items():
            fpir = float(np.mean(values))
            print(json.dumps({
                "gallery_identities": size, "target_fpir": target,
                "threshold": round(calibration.threshold_for(target, size), 4),
                "observed_fpir": fpir, "observed_over_target": round(fpir / target, 3),
                "nonmated_probes": len(values) * 2 * args.nonmated_identities,
            }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
