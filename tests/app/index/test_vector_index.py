"""The FAISS index of every backend and its snapshots, below the gallery."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.index.snapshot import SnapshotError, load_snapshot, read_header, write_snapshot
from app.index.spec import IndexSpec, IndexType
from app.index.vector_index import VectorIndex

DIM = 16


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def chunks(
    ids: np.ndarray, vectors: np.ndarray, size: int = 100
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size], vectors[start : start + size]


SPECS = {
    "flat": IndexSpec(IndexType.FLAT),
    "ivf": IndexSpec(IndexType.IVF, ivf_nlist=4, ivf_nprobe=4),
    "hnsw": IndexSpec(IndexType.HNSW, hnsw_m=8, index_compact_fraction=0.2),
}


@pytest.mark.parametrize("kind", list(SPECS))
def test_index_add_search_remove_snapshot(kind: str, tmp_path: Path) -> None:
    spec = SPECS[kind]
    ids = np.arange(10, 410, dtype=np.int64)
    vectors = unit_vectors(len(ids))
    index = VectorIndex.build(DIM, spec, chunks(ids, vectors))
    assert index.effective_type == kind
    assert index.count == 400
    assert np.array_equal(index.ids(), ids)
    scores, found = index.search(vectors[5], 3)
    assert found[0] == ids[5] and scores[0] == pytest.approx(1.0, abs=1e-5)

    index.remove([int(ids[5]), 999_999])
    assert index.count == 399
    assert ids[5] not in index.search(vectors[5], 10)[1]
    assert ids[5] not in index.ids()
    assert index.tombstone_count == (1 if kind == "hnsw" else 0)

    # Replaying a change twice is harmless: ids the index holds are not added again.
    assert index.add_missing(ids[:3], vectors[:3]) == 0
    assert index.count == 399

    path = tmp_path / "index.snapshot"
    watermark = write_snapshot(path, index, "v1", seq=1234)
    assert watermark.count == 399 and watermark.seq == 1234
    loaded, header = load_snapshot(path, spec)
    assert header.watermark == watermark
    assert np.array_equal(loaded.ids(), index.ids())
    assert loaded.search(vectors[7], 1)[1][0] == ids[7]
    assert ids[5] not in loaded.search(vectors[5], 10)[1]

    # Search-time knobs come from the settings of the loading process, not the file.
    retuned = dataclasses.replace(spec, ivf_nprobe=3, hnsw_ef_search=17)
    reloaded, _ = load_snapshot(path, retuned)
    inner = reloaded._inner if reloaded._inner is not None else reloaded._index
    if kind == "ivf":
        assert inner.nprobe == 3
    if kind == "hnsw":
        assert inner.hnsw.efSearch == 17

    data = bytearray(path.read_bytes())
    data[100:110] = b"\x00" * 10
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError):
        load_snapshot(path, spec)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(SnapshotError):
        read_header(path)


def test_hnsw_asks_for_compaction_and_ivf_for_training() -> None:
    ids = np.arange(1, 101, dtype=np.int64)
    hnsw = VectorIndex.build(DIM, SPECS["hnsw"], chunks(ids, unit_vectors(100)))
    assert not hnsw.needs_compaction
    hnsw.remove(range(1, 25))
    assert hnsw.needs_compaction

    small = IndexSpec(IndexType.IVF, ivf_nlist=4)  # trains from 4 * 39 = 156 vectors
    ivf = VectorIndex.build(DIM, small, chunks(ids, unit_vectors(100)))
    assert ivf.effective_type == "flat" and not ivf.needs_training
    more = np.arange(101, 201, dtype=np.int64)
    ivf.add(more, unit_vectors(100, seed=1))
    assert ivf.needs_training


def _hnsw_snapshot(path: Path) -> bytes:
    ids = np.arange(1, 61, dtype=np.int64)
    index = VectorIndex.build(DIM, SPECS["hnsw"], chunks(ids, unit_vectors(60, seed=3)))
    index.remove([7, 8])  # HNSW keeps them as tombstones, listed in the header
    write_snapshot(path, index, "v1", seq=1)
    return path.read_bytes()


def test_every_byte_of_the_header_and_trailer_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "index.snapshot"
    original = _hnsw_snapshot(path)
    header = read_header(path)
    assert header.tombstones == [7, 8]
    header_start = header.payload_bytes
    # Every byte after the index payload: the header JSON and the whole trailer.
    for position in range(header_start, len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(SnapshotError):
            load_snapshot(path, SPECS["hnsw"])


def test_a_changed_tombstone_that_is_still_valid_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "index.snapshot"
    original = _hnsw_snapshot(path)
    # "tombstones":[7,8] -> [7,9]: the header parses, but id 8 would come back to life.
    damaged = original.replace(b'"tombstones":[7,8]', b'"tombstones":[7,9]')
    assert damaged != original
    path.write_bytes(damaged)
    with pytest.raises(SnapshotError, match="header checksum"):
        load_snapshot(path, SPECS["hnsw"])


def test_an_older_format_snapshot_is_named_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "index.snapshot"
    path.write_bytes(b"\x00" * 64 + b"REIDSNP1")
    with pytest.raises(SnapshotError, match="older format 1"):
        read_header(path)
