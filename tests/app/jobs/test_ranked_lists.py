"""Ranked lists of a labelled-query job: plain cosine, best first, same view left out."""

from __future__ import annotations

import numpy as np

from app.gallery.store import EntryLabel
from app.jobs.live_gallery import LoadedGallery
from app.jobs.ranked_lists import MAX_LISTED_QUERIES, TOP_ENTRIES, ranked_lists


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def gallery_of(features: np.ndarray, owners: list[tuple[str, str | None]]) -> LoadedGallery:
    ids = np.arange(101, 101 + len(owners), dtype=np.int64)
    labels = [
        EntryLabel(int(i), who, camera, None) for i, (who, camera) in zip(ids, owners, strict=True)
    ]
    return LoadedGallery(ids, features, labels)


def test_entries_come_best_first_by_cosine_with_the_same_view_left_out() -> None:
    rng = np.random.default_rng(0)
    features = unit(rng.normal(size=(30, 8)))
    owners = [(f"p{i % 5}", f"cam-{i % 3}") for i in range(30)]
    gallery = gallery_of(features, owners)
    queries = unit(rng.normal(size=(3, 8)))
    labels = {
        "filenames": ["a.jpg", "broken.jpg", "b.jpg", "c.jpg"],
        "identities": ["p1", "p2", "p3", "p9"],
        "cameras": ["cam-1", None, None, "cam-0"],
    }
    kept = [0, 2, 3]  # broken.jpg did not decode
    lists = ranked_lists(queries, kept, labels, gallery)
    assert [row["file"] for row in lists] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [(row["identity"], row["camera"]) for row in lists] == [
        ("p1", "cam-1"),
        ("p3", None),
        ("p9", "cam-0"),
    ]
    for row, query in zip(lists, queries, strict=True):
        cosines = features @ query
        allowed = [
            g
            for g in range(30)
            if row["camera"] is None or owners[g] != (row["identity"], row["camera"])
        ]
        best = sorted(allowed, key=lambda g: -cosines[g])[:TOP_ENTRIES]
        assert [hit["entry_id"] for hit in row["ranked"]] == [101 + g for g in best]
        for hit, g in zip(row["ranked"], best, strict=True):
            assert hit["identity"] == owners[g][0]
            assert abs(hit["score"] - cosines[g]) <= 5.1e-5 and hit["score"] == round(
                hit["score"], 4
            )
            assert hit["correct"] == (owners[g][0] == row["identity"])
    # The first query's own view (p1 seen by cam-1: gallery rows 1 and 16) never appears.
    assert all(owners[hit["entry_id"] - 101] != ("p1", "cam-1") for hit in lists[0]["ranked"])


def test_the_same_view_is_left_out_even_when_it_is_the_best_match() -> None:
    features = unit(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    gallery = gallery_of(features, [("alice", "lobby"), ("alice", "gate"), ("bob", "lobby")])
    labels = {"filenames": ["q.jpg"], "identities": ["alice"], "cameras": ["lobby"]}
    (row,) = ranked_lists(unit(np.array([[1.0, 0.0]])), [0], labels, gallery)
    assert [(hit["entry_id"], hit["correct"]) for hit in row["ranked"]] == [
        (102, True),
        (103, False),
    ]
    no_camera = {**labels, "cameras": [None]}
    (row,) = ranked_lists(unit(np.array([[1.0, 0.0]])), [0], no_camera, gallery)
    assert [hit["entry_id"] for hit in row["ranked"]] == [101, 102, 103]
    assert row["ranked"][0]["score"] == 1.0


def test_only_the_first_queries_and_entries_are_listed() -> None:
    rng = np.random.default_rng(1)
    gallery = gallery_of(unit(rng.normal(size=(50, 4))), [("p", None)] * 50)
    count = MAX_LISTED_QUERIES + 5
    labels = {
        "filenames": [f"{i}.jpg" for i in range(count)],
        "identities": ["p"] * count,
        "cameras": [None] * count,
    }
    lists = ranked_lists(unit(rng.normal(size=(count, 4))), list(range(count)), labels, gallery)
    assert len(lists) == MAX_LISTED_QUERIES == 20
    assert [row["file"] for row in lists] == [f"{i}.jpg" for i in range(20)]
    assert all(len(row["ranked"]) == TOP_ENTRIES == 10 for row in lists)
    assert all(
        [hit["score"] for hit in row["ranked"]]
        == sorted((hit["score"] for hit in row["ranked"]), reverse=True)
        for row in lists
    )
    assert ranked_lists(np.empty((0, 4), np.float32), [], labels, gallery) == []
