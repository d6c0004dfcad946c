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
    resources = faiss.StandardGpuResources() if spec.index_use_gpu and gpu_available() else None
    if kind is IndexType.IVF:
        return _ivf(dim, spec, resources)
    return _flat(dim, resources)


def _flat(dim: int, resources: Any) -> Backend:
    flat = faiss.GpuIndexFlatIP(resources, dim) if resources is not None else faiss.IndexFlatIP(dim)
    return Backend(owning_id_map(flat), IndexType.FLAT, resources)


def _ivf(dim: int, spec: IndexSpec, resources: Any) -> Backend:
    if resources is not None:
        ivf = faiss.GpuIndexIVFFlat(resources, dim, spec.ivf_nlist, faiss.METRIC_INNER_PRODUCT)
        # GPU IVF deletes by tombstone, so ids are kept in an IDMap we can list.
        return Backend(owning_id_map(ivf), IndexType.IVF, resources)
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
