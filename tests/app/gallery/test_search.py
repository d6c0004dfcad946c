"""Ranking identities: the search widens past filtered neighbours, below HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from service_kit import PostgresServer
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import create_db_engine, session_factory, upgrade_to_head
from app.db.models import GalleryEntry
from app.gallery.change_log import ChangeLog
from app.gallery.embedding_slots import EmbeddingSlots
from app.gallery.follower import ChangeFollower
from app.gallery.lifecycle import IndexLifecycle
from app.gallery.live_index import LiveIndex
from app.gallery.search import INITIAL_NEIGHBOURS, GallerySearch, QueryFilters
from app.gallery.store import EntryLabel, EntryStore
from app.gallery.versions import ModelVersions
from app.index.gpu_probe import GpuIndexStatus
from app.index.spec import IndexSpec, IndexType
from app.telemetry import Telemetry

DIM = 16
EntryRow = tuple[EntryLabel, np.ndarray]


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class Parts:
    """The gallery's index-side parts over one database, as ``Gallery.build`` wires them."""

    def __init__(self, directory: Path, url: str | None = None) -> None:
        self.engine = create_db_engine(url or f"sqlite:///{directory / 'g.db'}")
        upgrade_to_head(self.engine)
        self.sessions = session_factory(self.engine)
        telemetry = Telemetry()
        self.store = store = EntryStore(self.sessions, model_version="v1", dim=DIM)
        self.live = LiveIndex(DIM, IndexSpec(IndexType.FLAT), telemetry)
        self.lifecycle = IndexLifecycle(
            store,
            self.live,
            ModelVersions(EmbeddingSlots(self.sessions, model_version="v1", serving_versions=set)),
            ChangeFollower(ChangeLog(self.sessions), store, self.live, telemetry),
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
    # 500 near entries over 50 identities; the first 64 neighbours hold some of each one's.
    assert all(1 <= m.matches <= 10 for m in plain)

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


def test_a_crowding_identity_costs_few_searches(
    gallery: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One person's 3,000 entries fill every neighbour list near the query: the search
    widens by what it found (one identity of five in 64, so x10), not x4 a time, and finds
    the distant identities exactly."""
    query = unit_vectors(1, seed=42)[0]
    crowd = unit_vectors(3000, seed=3) * 0.05 + query
    far = unit_vectors(40, seed=4)
    rows = [("crowd", "cam-0", v / np.linalg.norm(v), None) for v in crowd]
    rows += [(f"far-{i % 20}", "cam-1", v, None) for i, v in enumerate(far)]
    bulk_insert(gallery.sessions, rows)
    gallery.lifecycle.open()
    fetched: list[int] = []
    index = gallery.live.current
    search = index.search
    monkeypatch.setattr(index, "search", lambda q, k: (fetched.append(k), search(q, k))[1])

    ranked = gallery.search.rank(query, 5, QueryFilters())

    # 64 -> 640 -> the whole gallery (3,040): three searches where x4 steps took four.
    assert fetched == [INITIAL_NEIGHBOURS, 10 * INITIAL_NEIGHBOURS, 3040]
    assert ranked[0].identity == "crowd" and ranked[0].matches == 3000
    scores = far @ query
    best = {f"far-{j}": max(scores[j::20]) for j in range(20)}
    want = sorted(best.items(), key=lambda item: -item[1])[:4]
    assert [(m.identity, round(m.score, 5)) for m in ranked[1:]] == [
        (name, round(float(score), 5)) for name, score in want
    ]


def test_empty_gallery_searches_to_nothing(gallery: Parts) -> None:
    gallery.lifecycle.open()
    assert gallery.search.rank(unit_vectors(1)[0], 10, QueryFilters()) == []


@pytest.fixture
def any_gallery(backend: str, postgres: PostgresServer, tmp_path: Path) -> Parts:
    """Parts over SQLite and over PostgreSQL (``backend`` runs each test on both)."""
    return Parts(tmp_path, postgres.fresh_url() if backend == "postgresql" else None)


def reference(
    rows: list[EntryRow], query: np.ndarray, top_k: int, filters: QueryFilters
) -> list[tuple[str, float, int, str | None, int]]:
    """Brute force over every stored row: (identity, score, entry_id, camera, all admitted)."""
    best: dict[str, tuple[float, int, str | None]] = {}
    counts: dict[str, int] = {}
    for label, vector in rows:
        score = float(vector @ query)
        if not filters.admits(label):
            continue
        if filters.min_score is not None and score < filters.min_score:
            continue
        counts[label.identity] = counts.get(label.identity, 0) + 1
        held = best.get(label.identity)
        if held is None or (-score, label.entry_id) < (-held[0], held[1]):
            best[label.identity] = (score, label.entry_id, label.camera)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[1][1]))[:top_k]
    return [(name, s, entry, camera, counts[name]) for name, (s, entry, camera) in ranked]


def stored_rows(parts: Parts) -> list[EntryRow]:
    with parts.sessions() as session:
        entries = session.scalars(select(GalleryEntry).order_by(GalleryEntry.id)).all()
    return [
        (
            EntryLabel(entry.id, entry.identity, entry.camera, entry.captured_at),
            np.frombuffer(entry.embedding, dtype=np.float32),
        )
        for entry in entries
    ]


def test_ranking_equals_brute_force_with_filters_and_deletions(any_gallery: Parts) -> None:
    """Score, entry and camera are exact; ``matches`` is at most the identity's admitted count.

    Identity sizes are skewed (one holds 400 of ~1,000 entries), some rows are deleted
    properly (row and vector), some from the database only (a stale index), and one
    identity is erased: none of them may come back.
    """
    rng = np.random.default_rng(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sizes = [400] + [int(n) for n in rng.integers(1, 30, size=60)]
    vectors = unit_vectors(sum(sizes), seed=3)
    rows, number = [], 0
    for person, size in enumerate(sizes):
        for _ in range(size):
            hours = int(rng.integers(0, 240))
            when = None if number % 17 == 0 else start + timedelta(hours=hours)
            rows.append((f"p{person}", f"cam-{number % 4}", vectors[number], when))
            number += 1
    bulk_insert(any_gallery.sessions, rows)
    any_gallery.lifecycle.open()
    ids = [label.entry_id for label, _ in stored_rows(any_gallery)]
    for entry_id in ids[::9]:  # row and vector
        any_gallery.store.delete_entry(entry_id)
        any_gallery.live.remove([entry_id])
    for entry_id in ids[4::13]:  # the row only: the index still returns the vector
        any_gallery.store.delete_entry(entry_id)
    any_gallery.store.delete_identity("p3")
    remaining = stored_rows(any_gallery)

    window = {
        "captured_after": start + timedelta(days=2),
        "captured_before": start + timedelta(days=5),
    }
    cases = [
        QueryFilters(),
        QueryFilters(camera="cam-1", exclude_same_camera=True),
        QueryFilters(**window),
        QueryFilters(min_score=0.6),
        QueryFilters(camera="cam-2", exclude_same_camera=True, min_score=0.3, **window),
    ]
    queries = np.concatenate([unit_vectors(4, seed=11), vectors[[0, 5, 450]]])
    for query in queries:
        for filters in cases:
            for top_k in (1, 5, 25):
                got = any_gallery.search.rank(query, top_k, filters)
                want = reference(remaining, query, top_k, filters)
                assert [m.identity for m in got] == [w[0] for w in want], (filters, top_k)
                assert [m.entry_id for m in got] == [w[2] for w in want]
                assert [m.camera for m in got] == [w[3] for w in want]
                assert np.allclose([m.score for m in got], [w[1] for w in want], atol=1e-5)
                assert all(1 <= m.matches <= w[4] for m, w in zip(got, want, strict=True))


def test_matches_counts_every_admitted_entry_of_a_small_gallery(any_gallery: Parts) -> None:
    """Within the first fetch the whole gallery is examined: the old, exact count."""
    vectors = unit_vectors(60, seed=5)
    bulk_insert(
        any_gallery.sessions,
        [(f"q{i % 7}", f"cam-{i % 3}", v, None) for i, v in enumerate(vectors)],
    )
    any_gallery.lifecycle.open()
    rows = stored_rows(any_gallery)
    for filters in (QueryFilters(), QueryFilters(camera="cam-0", exclude_same_camera=True)):
        got = any_gallery.search.rank(vectors[0], 7, filters)
        want = reference(rows, vectors[0], 7, filters)
        assert [(m.identity, m.matches) for m in got] == [(w[0], w[4]) for w in want]


def rows_read(parts: Parts, query: np.ndarray) -> int:
    """Rows the database returns to one ``rank`` call, counted by replaying its SELECTs."""
    statements: list[tuple[str, object]] = []

    def record(*args: Any) -> None:  # (conn, cursor, statement, parameters, context, many)
        statement, parameters = args[2], args[3]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(parts.engine, "after_cursor_execute", record)
    try:
        parts.search.rank(query, 5, QueryFilters())
    finally:
        event.remove(parts.engine, "after_cursor_execute", record)
    with parts.engine.connect() as connection:
        return sum(
            len(connection.exec_driver_sql(statement, parameters).all())
            for statement, parameters in statements
        )


@pytest.mark.parametrize("crowd", [10, 1500])
def test_rows_read_do_not_grow_with_entries_per_identity(any_gallery: Parts, crowd: int) -> None:
    """A person seen all day (``crowd`` entries) costs a query no more rows than one seen twice.

    Five of the crowd's entries are near the query, the rest opposite it, so the nearest
    neighbours (and the work they need) are the same whatever ``crowd`` is; before, the
    top identities' every entry was read back and re-scored.
    """
    query = unit_vectors(1, seed=42)[0]
    others = unit_vectors(600, seed=8)
    near = unit_vectors(5, seed=9) * 0.1 + query
    far = unit_vectors(crowd - 5, seed=10) * 0.1 - query
    rows = [(f"o{i // 3}", "cam-0", v, None) for i, v in enumerate(others)]
    rows += [("crowd", "cam-1", v / np.linalg.norm(v), None) for v in [*near, *far]]
    bulk_insert(any_gallery.sessions, rows)
    any_gallery.lifecycle.open()
    assert any_gallery.search.rank(query, 5, QueryFilters())[0].identity == "crowd"
    assert rows_read(any_gallery, query) == INITIAL_NEIGHBOURS
