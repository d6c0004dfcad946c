"""One constructor per FAISS backend: flat, IVF and HNSW, on the CPU or a GPU.

* ``flat`` (default): exact inner product, ``IndexIDMap(IndexFlatIP)``;
  ``remove_ids`` deletes in place.
* ``ivf``: ``IndexIVFFlat`` (inner product), approximate, ``remove_ids`` deletes
  in place. It needs training, so until the gallery holds ``39 * nlist`` vectors
  it is served by an exact flat index and retrained by the next rebuild.
* ``hnsw``: ``IndexIDMap(IndexHNSWFlat)``, approximate; HNSW graphs cannot delete,
  so deleted ids become tombstones (see ``VectorIndex``).

On a GPU build of FAISS with a visible GPU, flat and IVF run on the GPU; GPU
indexes also delete by tombstone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faiss

from app.index.spec import IndexSpec, IndexType


@dataclass
class Backend:
    """A freshly made FAISS index and what the wrapper must know about it."""

    index: faiss.Index
    effective_type: IndexType
    gpu_resources: Any = None  # must outlive a GPU index

    @property
    def on_gpu(self) -> bool:
        return self.gpu_resources is not None


def gpu_available() -> bool:
    """A FAISS GPU build and at least one visible GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def new_backend(dim: int, spec: IndexSpec, *, trainable: bool) -> Backend:
    """An empty index; IVF only when ``trainable`` (else exact flat, see module doc)."""
    kind = spec.index_type
    if kind is IndexType.IVF and not trainable:
        kind = IndexType.FLAT
    if kind is IndexType.HNSW:
        return _hnsw(dim, spec)
    if spec.index_use_gpu and gpu_available():
        return new_gpu_backend(dim, spec, kind)
    if kind is IndexType.IVF:
        return _ivf(dim, spec)
    return Backend(owning_id_map(faiss.IndexFlatIP(dim)), IndexType.FLAT)


def new_gpu_backend(dim: int, spec: IndexSpec, kind: IndexType) -> Backend:
    """A flat or IVF index on GPU 0: the one place a GPU index is made (and can fail)."""
    resources = faiss.StandardGpuResources()
    if kind is IndexType.IVF:
        inner = faiss.GpuIndexIVFFlat(resources, dim, spec.ivf_nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        inner = faiss.GpuIndexFlatIP(resources, dim)
    # GPU indexes delete by tombstone, so ids are kept in an IDMap we can list.
    return Backend(owning_id_map(inner), kind, resources)


def _ivf(dim: int, spec: IndexSpec) -> Backend:
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, spec.ivf_nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()
    return Backend(index, IndexType.IVF)


def _hnsw(dim: int, spec: IndexSpec) -> Backend:
    hnsw = faiss.IndexHNSWFlat(dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = spec.hnsw_ef_construction
    return Backend(owning_id_map(hnsw), IndexType.HNSW)


def owning_id_map(inner: faiss.Index) -> faiss.IndexIDMap:
    """Wrap ``inner`` so FAISS ids are entry ids; the wrapper frees ``inner`` with itself."""
    wrapper = faiss.IndexIDMap(inner)
    wrapper.own_fields = True
    inner.this.disown()
    return wrapper
