"""Decide at start-up whether the index runs on the GPU, by trying it.

A FAISS GPU build can import, see a GPU and still be unable to run on it: a
wheel without kernels for that architecture fails its first kernel launch with
"no kernel image is available for execution on the device", long after
``gpu_available()`` said yes. So the service builds a small GPU index, adds
vectors and searches them once before serving; if any of that fails, or the
neighbours come back wrong, it serves from CPU FAISS and says why instead of
failing every enrollment and query later.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace

import numpy as np

from app.index import backends
from app.index.spec import IndexSpec, IndexType
from app.index.vector_index import VectorIndex

log = logging.getLogger(__name__)

PROBE_VECTORS = 64
PROBE_SEED = 0


@dataclass(frozen=True)
class GpuIndexStatus:
    """Whether a GPU index was asked for, whether it serves, and if not, why (for /ready)."""

    requested: bool
    used: bool
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def choose_index_device(dim: int, spec: IndexSpec) -> tuple[IndexSpec, GpuIndexStatus]:
    """The spec to serve with (GPU turned off unless it passed the probe) and why."""
    if not spec.index_use_gpu:
        return spec, GpuIndexStatus(requested=False, used=False, reason="index_use_gpu is off")
    cpu_spec = replace(spec, index_use_gpu=False)
    if spec.index_type is IndexType.HNSW:
        return cpu_spec, GpuIndexStatus(True, False, "FAISS has no GPU HNSW index")
    if not backends.gpu_available():
        return cpu_spec, GpuIndexStatus(True, False, "no FAISS GPU build or no visible GPU")
    try:
        _probe(dim, spec)
    except Exception as error:  # whatever the GPU raises, the CPU serves
        reason = f"{type(error).__name__}: {error}"
        log.warning("GPU FAISS index failed its start-up check, serving from CPU FAISS: %s", reason)
        return cpu_spec, GpuIndexStatus(True, False, reason)
    return spec, GpuIndexStatus(requested=True, used=True)


def _probe(dim: int, spec: IndexSpec) -> None:
    """Build, add and search on the GPU as serving will; raise if any of it fails or lies."""
    vectors = np.random.default_rng(PROBE_SEED).standard_normal((PROBE_VECTORS, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = np.arange(1, PROBE_VECTORS + 1, dtype=np.int64)
    index = VectorIndex.empty(dim, spec)
    if not index.on_gpu:
        raise RuntimeError("the GPU index was requested but the backend built a CPU index")
    index.add(ids, vectors)
    for row in (0, PROBE_VECTORS - 1):
        _, found = index.search(vectors[row], 1)
        if len(found) != 1 or int(found[0]) != int(ids[row]):
            raise RuntimeError(f"GPU index search returned {found.tolist()}, expected [{ids[row]}]")
