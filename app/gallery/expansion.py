"""α-query expansion: ask again with the query averaged with its best matches.

A crop from a bad angle or a dark camera can sit far from its person's other crops
while its best matches sit close to them; adding those matches' embeddings to the query,
weighted by ``score ** ALPHA`` (Radenović et al., α-QE), moves the query towards the
person's cluster. It also pulls the query towards whoever ranked first, right or wrong:
replayed on real Market-1501 it never raised identity rank-1 and lowered it from three
identities on (80.4% plain, 79.8% at 3, 76.7% at 10; docs/service.md). So it is opt-in,
and the open-set decision is always made on the plain query, where the calibration holds.

The expansion uses the best entry of each of the ``count`` top identities the plain query
found (after the request's filters), so it never reads more than ``count`` stored vectors.
"""

from __future__ import annotations

import numpy as np

from app.gallery.search import IdentityMatch
from app.gallery.store import EntryStore

MAX_EXPANSION = 10
ALPHA = 3.0


def expanded_query(
    query: np.ndarray, matches: list[IdentityMatch], count: int, store: EntryStore
) -> np.ndarray | None:
    """The unit-length α-QE query; None when no match is left to expand with."""
    chosen = [match for match in matches[:count] if match.score > 0]
    if not chosen:
        return None
    ids = np.array([match.entry_id for match in chosen], dtype=np.int64)
    vectors: dict[int, np.ndarray] = {}
    for chunk_ids, chunk_vectors in store.vector_chunks(ids):
        vectors.update(zip(chunk_ids.tolist(), chunk_vectors, strict=True))
    total = query.astype(np.float32).copy()
    for match in chosen:
        vector = vectors.get(match.entry_id)
        if vector is not None:  # deleted since the plain search: leave it out
            total += (match.score**ALPHA) * vector
    return total / np.linalg.norm(total)
