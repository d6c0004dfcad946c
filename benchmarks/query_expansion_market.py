"""Does ``POST /query``'s α-query expansion help on real people? Replayed on saved features.

    .venv/bin/python -m training.evaluate --checkpoint RUN/best --data-dir MARKET \\
        --save-features RUN/test_features.npz
    .venv/bin/python benchmarks/query_expansion_market.py --features RUN/test_features.npz \\
        [--expansions 0 1 2 3 5 10]

The gallery is what the service holds after enrolling Market's whole test gallery: every
crop an entry, the distractors one identity "0000". Each query is ranked as ``/query``
ranks with ``exclude_same_camera`` (an identity scores its best entry from another
camera), then expanded as ``app/gallery/expansion.py`` expands it: the best entries of its
top ``e`` identities with a positive score, each weighted by score ** ALPHA, added to the
query and re-normalised, and ranked again. Reported per ``e``, over the 3,368 queries:
identity rank-1 and rank-5 (the right person first, or in the top five), and how often
the expansion turned a right first answer wrong and a wrong one right.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from app.gallery.expansion import ALPHA, MAX_EXPANSION
from training.feature_files import load_feature_file

CHUNK = 256


def identity_scores(
    queries: np.ndarray, gallery: np.ndarray, blocked: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Best admitted score per identity, and the gallery row giving it, for each query.

    ``gallery`` rows are sorted by identity, whose runs begin at ``starts``; ``blocked``
    (queries x gallery) marks entries the filter drops.
    """
    scores = queries @ gallery.T
    scores[blocked] = -np.inf
    best = np.maximum.reduceat(scores, starts, axis=1)
    ends = np.append(starts[1:], scores.shape[1])
    spans = zip(starts, ends, strict=True)
    rows = np.stack([start + scores[:, start:end].argmax(axis=1) for start, end in spans], axis=1)
    return best, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="training.evaluate .npz")
    parser.add_argument("--expansions", type=int, nargs="+", default=[0, 1, 2, 3, 5, MAX_EXPANSION])
    args = parser.parse_args(argv)
    arrays = load_feature_file(args.features)
    order = np.argsort(arrays["gallery_pids"], kind="stable")
    gallery = arrays["gallery_features"][order].astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    gallery_pids, gallery_cams = arrays["gallery_pids"][order], arrays["gallery_camids"][order]
    identities, starts = np.unique(gallery_pids, return_index=True)
    queries = arrays["query_features"].astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    query_pids, query_cams = arrays["query_pids"], arrays["query_camids"]

    first: dict[int, np.ndarray] = {}
    in_top5: dict[int, np.ndarray] = {}
    for begin in range(0, len(queries), CHUNK):
        part = slice(begin, begin + CHUNK)
        blocked = query_cams[part, None] == gallery_cams[None, :]
        best, rows = identity_scores(queries[part], gallery, blocked, starts)
        ranked = np.argsort(-best, axis=1)
        for expansion in args.expansions:
            if expansion == 0:
                top = ranked
            else:
                chosen = ranked[:, :expansion]
                weights = np.take_along_axis(best, chosen, axis=1)
                weights = np.where(weights > 0, weights, 0.0) ** ALPHA
                entries = gallery[np.take_along_axis(rows, chosen, axis=1)]
                expanded = queries[part] + (weights[:, :, None] * entries).sum(axis=1)
                expanded /= np.linalg.norm(expanded, axis=1, keepdims=True)
                again, _ = identity_scores(expanded, gallery, blocked, starts)
                top = np.argsort(-again, axis=1)
            right = identities[top[:, :5]] == query_pids[part, None]
            first.setdefault(expansion, np.empty(0, bool))
            in_top5.setdefault(expansion, np.empty(0, bool))
            first[expansion] = np.append(first[expansion], right[:, 0])
            in_top5[expansion] = np.append(in_top5[expansion], right.any(axis=1))
    plain = first.get(0)
    report = []
    for expansion in args.expansions:
        row = {
            "expansion": expansion,
            "rank1": round(float(first[expansion].mean()), 4),
            "rank5": round(float(in_top5[expansion].mean()), 4),
        }
        if plain is not None and expansion:
            row["right_made_wrong"] = int((plain & ~first[expansion]).sum())
            row["wrong_made_right"] = int((~plain & first[expansion]).sum())
        report.append(row)
    print(json.dumps({"queries": len(queries), "alpha": ALPHA, "results": report}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
