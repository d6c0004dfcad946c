"""Entry-id-keyed search over unit vectors, whatever FAISS backend holds them.

Backends that cannot delete in place (HNSW, GPU indexes) get tombstones:
deleted ids filtered out of every search, until the gallery rebuilds the index
once tombstones pass ``index_compact_fraction``. All operations take one lock:
FAISS indexes are not safe for a search concurrent with an add. A search runs on
one core (see `_one_openmp_thread`): ~2 ms for a Market-sized flat gallery, far
below the network's share of a query.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import faiss
import numpy as np

from app.index.backends import new_backend
from app.index.spec import IndexSpec, IndexType

IVF_TRAINING_SAMPLE_PER_LIST = 256

IdVectorChunks = Iterable[tuple[np.ndarray, np.ndarray]]


class VectorIndex:
    """Entry-id-keyed search over unit vectors; thread-safe."""

    def __init__(
        self,
        dim: int,
        spec: IndexSpec,
        index: faiss.Index,
        *,
        effective_type: IndexType | str,
        on_gpu: bool = False,
        tombstones: Iterable[int] = (),
        gpu_resources: Any = None,
    ) -> None:
        self.dim = dim
        self.spec = spec
        self.effective_type = IndexType(effective_type)
        self.on_gpu = on_gpu
        self._index = index
        self._gpu_resources = gpu_resources  # must outlive the GPU index
        self._tombstones: set[int] = set(tombstones)
        self._lock = threading.RLock()
        # An IndexIDMap translates labels in an OpenMP loop that costs milliseconds per
        # query on a busy host, so searches go to the inner index and labels are mapped
        # here through a cached copy of the id map (refreshed after every change).
        self._inner: faiss.Index | None = (
            faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else None
        )
        self._id_cache: np.ndarray | None = None
        self._apply_search_parameters()

    def _apply_search_parameters(self) -> None:
        """Search-time knobs are settings, not part of a snapshot: set them on every load."""
        target = self._inner if self._inner is not None else self._index
        if isinstance(target, faiss.IndexHNSW):
            target.hnsw.efSearch = self.spec.hnsw_ef_search
        elif hasattr(target, "nprobe"):
            target.nprobe = self.spec.ivf_nprobe

    # ----------------------------------------------------------------- building
    @classmethod
    def build(cls, dim: int, spec: IndexSpec, chunks: IdVectorChunks) -> VectorIndex:
        """Build from (ids, vectors) chunks, training IVF on the first ones when enough exist."""
        iterator = iter(chunks)
        if spec.index_type is IndexType.IVF:
            buffered, exhausted = _buffer(iterator, spec.ivf_nlist * IVF_TRAINING_SAMPLE_PER_LIST)
            buffered_count = sum(len(ids) for ids, _ in buffered)
            enough = buffered_count >= spec.ivf_min_train
            index = cls.empty(dim, spec, trainable=enough)
            if enough:
                index._train(np.concatenate([vectors for _, vectors in buffered]))
            for ids, vectors in buffered:
                index.add(ids, vectors)
            if not exhausted:
                for ids, vectors in iterator:
                    index.add(ids, vectors)
            return index
        index = cls.empty(dim, spec)
        for ids, vectors in iterator:
            index.add(ids, vectors)
        return index

    @classmethod
    def empty(cls, dim: int, spec: IndexSpec, *, trainable: bool = False) -> VectorIndex:
        """An empty index of the configured backend (exact flat until IVF can train)."""
        backend = new_backend(dim, spec, trainable=trainable)
        return cls(
            dim,
            spec,
            backend.index,
            effective_type=backend.effective_type,
            on_gpu=backend.on_gpu,
            gpu_resources=backend.gpu_resources,
        )

    def _train(self, vectors: np.ndarray) -> None:
        with self._lock:
            self._index.train(np.ascontiguousarray(vectors, dtype=np.float32))

    # ----------------------------------------------------------------- queries
    @property
    def supports_remove(self) -> bool:
        return self.effective_type is not IndexType.HNSW and not self.on_gpu

    @property
    def count(self) -> int:
        """Searchable (live) vectors."""
        with self._lock:
            return int(self._index.ntotal) - len(self._tombstones)

    @property
    def tombstone_count(self) -> int:
        with self._lock:
            return len(self._tombstones)

    @property
    def needs_compaction(self) -> bool:
        with self._lock:
            total = int(self._index.ntotal)
            return bool(self._tombstones) and (
                len(self._tombstones) >= self.spec.index_compact_fraction * max(total, 1)
            )

    @property
    def needs_training(self) -> bool:
        """Configured IVF but serving exact flat, and enough vectors to train now."""
        return (
            self.spec.index_type is IndexType.IVF
            and self.effective_type is not IndexType.IVF
            and self.count >= self.spec.ivf_min_train
        )

    def ids(self) -> np.ndarray:
        """Live ids, sorted."""
        with self._lock:
            all_ids = self._all_ids()
            if self._tombstones:
                dead = np.fromiter(self._tombstones, dtype=np.int64, count=len(self._tombstones))
                all_ids = all_ids[~np.isin(all_ids, dead)]
            return np.sort(all_ids)

    def _all_ids(self) -> np.ndarray:
        index = self._index
        if isinstance(index, faiss.IndexIDMap):
            if self._id_cache is None:
                self._id_cache = faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
            return self._id_cache
        invlists = faiss.extract_index_ivf(index).invlists
        parts = [
            faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
            for i in range(invlists.nlist)
            if invlists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) for one query vector, best first, tombstones removed."""
        with self._lock:
            total = int(self._index.ntotal)
            if total == 0 or k <= 0:
                return np.empty(0, np.float32), np.empty(0, np.int64)
            fetch = min(total, k + len(self._tombstones))
            vector = query.reshape(1, -1).astype(np.float32)
            with _one_openmp_thread():
                if self._inner is not None:
                    scores, positions = self._inner.search(vector, fetch)
                    scores, positions = scores[0], positions[0]
                    ids = np.where(positions >= 0, self._all_ids()[np.maximum(positions, 0)], -1)
                else:
                    scores, ids = self._index.search(vector, fetch)
                    scores, ids = scores[0], ids[0]
            keep = ids >= 0
            if self._tombstones:
                dead = np.fromiter(self._tombstones, dtype=np.int64, count=len(self._tombstones))
                keep &= ~np.isin(ids, dead)
            return scores[keep][:k], ids[keep][:k]

    # ----------------------------------------------------------------- updates
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(
                f"expected vectors of shape ({len(ids)}, {self.dim}), got {vectors.shape}"
            )
        with self._lock:
            self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
            self._id_cache = None

    def add_missing(self, ids: np.ndarray, vectors: np.ndarray) -> int:
        """Add the vectors whose id the index does not hold yet (live or tombstoned);
        returns how many were added. What makes replaying a change twice harmless."""
        with self._lock:
            held = np.isin(ids, self._all_ids())
            if held.any():
                ids, vectors = ids[~held], vectors[~held]
            self.add(ids, vectors)
            return len(ids)

    def remove(self, ids: Iterable[int]) -> None:
        id_array = np.fromiter(ids, dtype=np.int64)
        if len(id_array) == 0:
            return
        with self._lock:
            if self.supports_remove:
                self._index.remove_ids(id_array)
                self._id_cache = None
            else:
                present = id_array[np.isin(id_array, self._all_ids())]
                self._tombstones.update(int(i) for i in present)

    # ----------------------------------------------------------------- persistence
    def cpu_index(self) -> faiss.Index:
        """A CPU copy (or the index itself) for writing a snapshot; call under ``locked()``."""
        return faiss.index_gpu_to_cpu(self._index) if self.on_gpu else self._index

    def tombstones(self) -> list[int]:
        with self._lock:
            return sorted(self._tombstones)

    def locked(self) -> threading.RLock:
        return self._lock


@contextmanager
def _one_openmp_thread() -> Iterator[None]:
    """Search one query on the calling thread alone.

    FAISS parallelises a search over its queries, and the service searches one at a
    time, so an OpenMP team only adds its start-up and hand-off: on the 2-core
    development VM a 15,913-entry flat search took 11.2 ms p50 with the default team
    of two and 2.4 ms with one (benchmarks/search_cost.py). Building and training
    keep every core. The count is per calling thread, so it is restored afterwards.
    """
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _buffer(
    iterator: Iterator[tuple[np.ndarray, np.ndarray]], limit: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool]:
    """Take chunks until ``limit`` rows are held; also say whether the iterator ran out."""
    held: list[tuple[np.ndarray, np.ndarray]] = []
    rows = 0
    for ids, vectors in iterator:
        held.append((ids, vectors))
        rows += len(ids)
        if rows >= limit:
            return held, False
    return held, True
