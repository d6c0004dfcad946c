"""What a labelled-query job's first queries found: their best gallery entries, best first.

A page draws these as the trainer's ranked-list grid (training/plots.py): each query,
then its hits with their thumbnails, marked right or wrong. The ranking is plain
cosine similarity of the embeddings, whatever re-ranking or query expansion the job
applied: those options change the job's metrics only. As in the metrics (and the
trainer's grid), a gallery entry of the query's own identity seen by the query's own
camera is left out: it is not a re-identification. A query without a camera leaves
nothing out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.jobs.live_gallery import LoadedGallery

MAX_LISTED_QUERIES = 20
TOP_ENTRIES = 10
_DECIMALS = 4


def ranked_lists(
    query_features: np.ndarray,
    kept: Sequence[int],
    labels: dict[str, Any],
    gallery: LoadedGallery,
) -> list[dict[str, Any]]:
    """The top entries of the first ``MAX_LISTED_QUERIES`` decoded queries.

    ``query_features`` holds one row per position in ``kept`` (the uploaded images that
    decoded, in upload order); ``labels`` are the job's stored filenames, identities and
    cameras, indexed by upload position.
    """
    count = min(MAX_LISTED_QUERIES, len(kept))
    if count == 0 or len(gallery.ids) == 0:
        return []
    scores = query_features[:count] @ gallery.features.T
    identities = np.array([owner.identity for owner in gallery.owners], dtype=object)
    cameras = np.array([owner.camera for owner in gallery.owners], dtype=object)
    lists = []
    for row, index in enumerate(kept[:count]):
        identity, camera = labels["identities"][index], labels["cameras"][index]
        row_scores = scores[row].astype(np.float64)
        if camera is not None:
            row_scores[(identities == identity) & (cameras == camera)] = -np.inf
        order = _best(row_scores, TOP_ENTRIES)
        lists.append(
            {
                "file": labels["filenames"][index],
                "identity": identity,
                "camera": camera,
                "ranked": [
                    {
                        "entry_id": int(gallery.ids[g]),
                        "identity": gallery.owners[g].identity,
                        "score": round(float(row_scores[g]), _DECIMALS),
                        "correct": gallery.owners[g].identity == identity,
                    }
                    for g in order
                    if np.isfinite(row_scores[g])
                ],
            }
        )
    return lists


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores, best first.

    A partition, then a sort of only those: a full sort per query costs far more on a
    large gallery.
    """
    if len(scores) <= k:
        return np.argsort(-scores, kind="stable")
    chosen = np.argpartition(-scores, k - 1)[:k]
    return chosen[np.lexsort((chosen, -scores[chosen]))]
