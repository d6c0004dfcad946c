"""Concurrent enrollments and queries lose nothing and duplicate nothing."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from service_kit import ServiceHandle, files, person_jpeg

WRITERS = 6
REQUESTS_PER_WRITER = 3
IMAGES_PER_REQUEST = 2


def all_entries(client: TestClient) -> list[dict]:
    entries, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = client.get("/gallery", params=params).json()
        entries.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return entries


def test_concurrent_enroll_and_query(service: ServiceHandle) -> None:
    with service.client() as client:
        stop = threading.Event()
        query_statuses: Counter[int] = Counter()

        def writer(worker: int) -> list[int]:
            ids = []
            for request in range(REQUESTS_PER_WRITER):
                images = [
                    person_jpeg(worker + 1, 1 + request, shot, seed=5)
                    for shot in range(IMAGES_PER_REQUEST)
                ]
                response = client.post(
                    "/gallery",
                    data={"identity": f"worker-{worker}", "camera": f"c{request}"},
                    files=files(f"w{worker}", *images),
                )
                assert response.status_code == 201, response.text
                ids.extend(entry["id"] for entry in response.json()["entries"])
            return ids

        def reader() -> None:
            query = person_jpeg(1, 9, 0, seed=5)
            while not stop.is_set():
                response = client.post(
                    "/query", files={"image": ("q.jpg", query, "image/jpeg")}, data={"top_k": 3}
                )
                query_statuses[response.status_code] += 1

        def same_bytes(identity: str) -> tuple[int, dict]:
            image = person_jpeg(50, 1, 0, seed=5)
            response = client.post("/gallery", data={"identity": identity}, files=files("d", image))
            return response.status_code, response.json()

        with ThreadPoolExecutor(max_workers=WRITERS + 6) as pool:
            readers = [pool.submit(reader) for _ in range(2)]
            writers = [pool.submit(writer, worker) for worker in range(WRITERS)]
            racers = [pool.submit(same_bytes, name) for name in ("twin", "twin", "twin", "other")]
            created_ids = [entry_id for future in writers for entry_id in future.result()]
            races = [future.result() for future in racers]
            stop.set()
            for future in readers:
                future.result()

        assert query_statuses and set(query_statuses) == {200}
        assert len(created_ids) == len(set(created_ids)) == WRITERS * 6

        # The same bytes raced four times: exactly one creation; the same identity sees
        # that entry again, the other identity gets a 409 naming the holder (or holds it).
        created = [
            body for status, body in races if status == 201 and body["entries"][0]["created"]
        ]
        assert len(created) == 1
        holder = created[0]["identity"]
        for status, body in races:
            if status == 409:
                assert body["error"]["code"] == "duplicate_image"
                assert body["error"]["details"]["holder_identity"] == holder
            else:
                assert status == 201 and body["identity"] == holder

        entries = all_entries(client)
        assert len(entries) == WRITERS * 6 + 1
        assert len({entry["sha256"] for entry in entries}) == len(entries)
        per_identity = Counter(entry["identity"] for entry in entries)
        assert all(per_identity[f"worker-{w}"] == 6 for w in range(WRITERS))

        step = client.get("/ready").json()["checks"]["index"]
        assert step["ok"] and step["index_entries"] == len(entries)
        assert "reconciled" not in step
        metrics = client.get("/metrics").text
        assert "reid_batch_size_count" in metrics
