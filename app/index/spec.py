"""What index to build: the one vocabulary shared by the settings, the index and its snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# FAISS's guidance: fewer than ~39 training points per centroid gives poor clusters.
IVF_MIN_POINTS_PER_LIST = 39


class IndexType(StrEnum):
    FLAT = "flat"
    IVF = "ivf"
    HNSW = "hnsw"


@dataclass(frozen=True)
class IndexSpec:
    """The index's configuration; each field is named as its ``REID_*`` setting.

    Sharing the names lets ``Settings.section(IndexSpec)`` build it without a
    hand-written copy that could fall out of step with the settings.
    """

    index_type: IndexType
    ivf_nlist: int = 1024
    ivf_nprobe: int = 384
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 256
    index_use_gpu: bool = True
    index_compact_fraction: float = 0.1

    def structure(self) -> dict[str, Any]:
        """The parameters that change what is stored (not how it is searched)."""
        if self.index_type is IndexType.IVF:
            return {"type": "ivf", "nlist": self.ivf_nlist}
        if self.index_type is IndexType.HNSW:
            return {"type": "hnsw", "m": self.hnsw_m, "ef_construction": self.hnsw_ef_construction}
        return {"type": "flat"}

    @property
    def ivf_min_train(self) -> int:
        return self.ivf_nlist * IVF_MIN_POINTS_PER_LIST
