"""Ranking identities: the search widens past filtered neighbours, below HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import create_db_engine, session_factory, upgrade_to_head
from app.db.models import GalleryEntry
from app.gallery.lifecycle import IndexLifecycle
from app.gallery.live_index import LiveIndex
from app.gallery.search import GallerySearch, QueryFilters
from app.gallery.store import EntryStore
from app.gallery.versions import ModelVersions
from app.index.gpu_probe import GpuIndexStatus
from app.index.spec import IndexSpec, IndexType
from app.telemetry import Telemetry

DIM = 16


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class Parts:
    """The gallery's index-side parts over one SQLite file, as ``Gallery.build`` wires them."""

    def __init__(self, directory: Path) -> None:
        engine = create_db_engine(f"sqlite:///{directory / 'g.db'}")
        upgrade_to_head(engine)
        self.sessions = session_factory(engine)
        telemetry = Telemetry()
        store = EntryStore(self.sessions, model_version="v1", dim=DIM)
        self.live = LiveIndex(DIM, IndexSpec(IndexType.FLAT), telemetry)
        self.lifecycle = IndexLifecycle(
            store,
            self.live,
            ModelVersions(store),
            snapshot_path=directory / "index.snapshot",
            gpu=GpuIndexStatus(requested=False, used=False, reason="index_use_gpu is off"),
        )
        self.search = GallerySearch(store=store, live=self.live, telemetry=telemetry)


@pytest.fixture
def gallery(tmp_path: Path) -> Parts:
    return Parts(tmp_path)


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


def test_search_widens_past_filtered_neighbours(gallery: Parts) -> None:
    query = unit_vectors(1, seed=42)[0]
    noise = unit_vectors(600, seed=1) * 0.05
    near = [query + noise[i] for i in range(500)]  # all very close to the query ...
    far = unit_vectors(100, seed=2)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(f"near-{i % 50}", "cam-q", v / np.linalg.norm(v), start) for i, v in enumerate(near)]
    rows += [
        (f"far-{i % 20}", "cam-x", v, start + timedelta(days=1 + i % 3)) for i, v in enumerate(far)
    ]
    bulk_insert(gallery.sessions, rows)
    gallery.lifecycle.open()
    assert gallery.live.count == 600

    plain = gallery.search.rank(query, 5, QueryFilters())
    assert len(plain) == 5 and all(m.identity.startswith("near-") for m in plain)
    assert all(m.matches == 10 for m in plain)  # 500 near entries over 50 identities

    # ... and all on the query's camera: excluding it needs far more than the first
    # 64 neighbours, so the search must widen until 5 identities survive.
    other = gallery.search.rank(query, 5, QueryFilters(camera="cam-q", exclude_same_camera=True))
    assert len(other) == 5 and all(m.identity.startswith("far-") for m in other)
    assert [m.score for m in other] == sorted((m.score for m in other), reverse=True)

    window = QueryFilters(captured_after=start + timedelta(days=2))
    dated = gallery.search.rank(query, 30, window)
    assert len(dated) == 20 and all(m.identity.startswith("far-") for m in dated)
    assert all(
        m.matches == sum(1 for i in range(100) if i % 20 == int(m.identity[4:]) and i % 3)
        for m in dated
    )

    floor = gallery.search.rank(query, 100, QueryFilters(min_score=0.9))
    assert floor and all(m.score >= 0.9 for m in floor)
    assert {m.identity for m in floor} == {f"near-{i}" for i in range(50)}


def test_empty_gallery_searches_to_nothing(gallery: Parts) -> None:
    gallery.lifecycle.open()
    assert gallery.search.rank(unit_vectors(1)[0], 10, QueryFilters()) == []
