"""The index, its snapshots, the search widening and the dynamic batcher, below HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy.orm import Session, sessionmaker

from app.batcher import BatcherStoppedError, DynamicBatcher
from app.crops import CropStore
from app.db import create_db_engine, session_factory, upgrade_to_head
from app.gallery import Gallery, QueryFilters
from app.orm import GalleryEntry
from app.settings import IndexType
from app.snapshot import SnapshotError, load_snapshot, read_header, write_snapshot
from app.telemetry import Telemetry
from app.vector_index import IndexSpec, VectorIndex

DIM = 16


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def chunks(ids: np.ndarray, vectors: np.ndarray, size: int = 100):
    for start in range(0, len(ids), size):
        yield ids[start : start + size], vectors[start : start + size]


SPECS = {
    "flat": IndexSpec(IndexType.FLAT),
    "ivf": IndexSpec(IndexType.IVF, ivf_nlist=4, ivf_nprobe=4),
    "hnsw": IndexSpec(IndexType.HNSW, hnsw_m=8, compact_fraction=0.2),
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

    path = tmp_path / "index.snapshot"
    watermark = write_snapshot(path, index, "v1")
    assert watermark.count == 399 and watermark.max_id == 409
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


@pytest.fixture
def gallery(tmp_path: Path) -> Gallery:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade_to_head(engine)
    return Gallery(
        session_factory(engine),
        model_version="v1",
        dim=DIM,
        spec=SPECS["flat"],
        crops=CropStore(tmp_path / "crops"),
        telemetry=Telemetry(),
        snapshot_path=tmp_path / "index.snapshot",
    )


def bulk_insert(
    sessions: sessionmaker[Session], rows: list[tuple[str, str, np.ndarray, datetime | None]]
) -> None:
    with sessions() as session:
        for number, (identity, camera, vector, captured_at) in enumerate(rows):
            session.add(
                GalleryEntry(
                    identity=identity,
                    sha256=f"{number:064x}",
                    camera=camera,
                    captured_at=captured_at,
                    image_format="jpeg",
                    width=64,
                    height=128,
                    byte_size=1,
                    embedding=vector.astype(np.float32).tobytes(),
                    embedding_dim=DIM,
                    model_version="v1",
                )
            )
        session.commit()


def test_search_widens_past_filtered_neighbours(gallery: Gallery) -> None:
    query = unit_vectors(1, seed=42)[0]
    noise = unit_vectors(600, seed=1) * 0.05
    near = [query + noise[i] for i in range(500)]  # all very close to the query ...
    far = unit_vectors(100, seed=2)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(f"near-{i % 50}", "cam-q", v / np.linalg.norm(v), start) for i, v in enumerate(near)]
    rows += [
        (f"far-{i % 20}", "cam-x", v, start + timedelta(days=1 + i % 3)) for i, v in enumerate(far)
    ]
    bulk_insert(gallery._sessions, rows)
    gallery.open()
    assert gallery.index.count == 600

    plain = gallery.search(query, 5, QueryFilters())
    assert len(plain) == 5 and all(m.identity.startswith("near-") for m in plain)
    assert all(m.matches == 10 for m in plain)  # 500 near entries over 50 identities

    # ... and all on the query's camera: excluding it needs far more than the first
    # 64 neighbours, so the search must widen until 5 identities survive.
    other = gallery.search(query, 5, QueryFilters(camera="cam-q", exclude_same_camera=True))
    assert len(other) == 5 and all(m.identity.startswith("far-") for m in other)
    assert [m.score for m in other] == sorted((m.score for m in other), reverse=True)

    window = QueryFilters(captured_after=start + timedelta(days=2))
    dated = gallery.search(query, 30, window)
    assert len(dated) == 20 and all(m.identity.startswith("far-") for m in dated)
    assert all(
        m.matches == sum(1 for i in range(100) if i % 20 == int(m.identity[4:]) and i % 3)
        for m in dated
    )

    floor = gallery.search(query, 100, QueryFilters(min_score=0.9))
    assert floor and all(m.score >= 0.9 for m in floor)
    assert {m.identity for m in floor} == {f"near-{i}" for i in range(50)}


def test_empty_gallery_searches_to_nothing(gallery: Gallery) -> None:
    gallery.open()
    assert gallery.search(unit_vectors(1)[0], 10, QueryFilters()) == []


def row_means(batch: torch.Tensor) -> np.ndarray:
    return batch.reshape(batch.shape[0], -1).mean(dim=1, keepdim=True).numpy()


def test_batcher_gathers_concurrent_requests_and_routes_rows_back() -> None:
    sizes: list[int] = []
    threads: set[str] = set()

    def forward(batch: torch.Tensor) -> np.ndarray:
        sizes.append(int(batch.shape[0]))
        threads.add(threading.current_thread().name)
        return row_means(batch)

    batcher = DynamicBatcher(forward, max_batch=8, max_wait_ms=50, telemetry=Telemetry())
    batcher.start()

    async def scenario() -> list[np.ndarray]:
        requests = [torch.full((1, 3, 4, 2), float(i)) for i in range(20)]
        requests.append(torch.arange(11, dtype=torch.float32).view(11, 1, 1, 1) + 100)
        return await asyncio.gather(*(batcher.embed(r) for r in requests))

    try:
        results = asyncio.run(scenario())
    finally:
        batcher.stop()
    for i in range(20):
        assert results[i].shape == (1, 1) and results[i][0, 0] == pytest.approx(i)
    assert results[20][:, 0].tolist() == pytest.approx([100.0 + i for i in range(11)])
    assert sum(sizes) == 31 and max(sizes) <= 8
    assert len(sizes) < 31  # requests really were gathered
    assert threads == {"batcher"}


def test_batcher_failure_reaches_every_request_and_stop_refuses_new_work() -> None:
    def forward(batch: torch.Tensor) -> np.ndarray:
        raise RuntimeError("device lost")

    batcher = DynamicBatcher(forward, max_batch=4, max_wait_ms=20, telemetry=Telemetry())
    batcher.start()

    async def scenario() -> list[object]:
        return await asyncio.gather(
            *(batcher.embed(torch.zeros(1, 3, 2, 2)) for _ in range(3)), return_exceptions=True
        )

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, RuntimeError) and "device lost" in str(o) for o in outcomes)
    batcher.stop()
    with pytest.raises(BatcherStoppedError):
        asyncio.run(batcher.embed(torch.zeros(1, 3, 2, 2)))
