"""Enroll, query, list, delete and erase, over HTTP, on both databases."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from fastapi.testclient import TestClient
from service_kit import ServiceHandle, files, person_jpeg, unique

IDENTITIES = range(1, 7)
ENROLLED = ((1, (0, 1, 2)), (2, (0, 1)))  # (camera, shots) per identity
QUERIES = [(camera, shot) for camera in (1, 2) for shot in (10, 11)]


def query(client: TestClient, image: bytes, **fields: object) -> dict:
    response = client.post(
        "/query",
        data={key: str(value) for key, value in fields.items()},
        files={"image": ("q.jpg", image, "image/jpeg")},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_enroll_query_delete_with_a_trained_model(
    make_service: Callable[..., ServiceHandle], trained_checkpoint: Path
) -> None:
    service = make_service(model_path=trained_checkpoint)
    with service.client() as client:
        card = client.get("/model").json()
        assert card["trained"] is True and card["config"]["arch"] == "resnet18"
        entry_ids: dict[int, list[int]] = {}
        for pid in IDENTITIES:  # identities the test-tiny model trained on (seed 0)
            for camera, shots in ENROLLED:
                images = [person_jpeg(pid, camera, shot, seed=0) for shot in shots]
                response = client.post(
                    "/gallery",
                    data={
                        "identity": f"person-{pid}",
                        "camera": f"cam-{camera}",
                        "captured_at": f"2026-03-0{camera}T12:00:00+01:00",
                    },
                    files=files(f"p{pid}c{camera}", *images),
                )
                assert response.status_code == 201, response.text
                body = response.json()
                assert body["identity"] == f"person-{pid}"
                assert all(entry["created"] for entry in body["entries"])
                assert body["entries"][0]["captured_at"] == f"2026-03-0{camera}T11:00:00Z"
                entry_ids.setdefault(pid, []).extend(e["id"] for e in body["entries"])

        # Ranking: new crops of enrolled people find them. Broken ranking (ids mixed
        # up, wrong scores) would sit at chance: rank-1 1/6, top-3 1/2.
        ranks = []
        for camera, shot in QUERIES:
            for pid in IDENTITIES:
                answer = query(client, person_jpeg(pid, camera, shot, seed=0), top_k=6)
                results = answer["results"]
                assert [r["rank"] for r in results] == list(range(1, len(results) + 1))
                assert [r["score"] for r in results] == sorted(
                    (r["score"] for r in results), reverse=True
                )
                assert answer["model_version"] == card["version"]
                assert answer["gallery_size"] == 30
                assert set(answer["timings"]) == {"decode_ms", "embed_ms", "search_ms", "total_ms"}
                for result in results:
                    pid_of_result = int(result["identity"].split("-")[1])
                    assert result["entry_id"] in entry_ids[pid_of_result]
                    assert result["matches"] == 5
                ranks.append([r["identity"] for r in results].index(f"person-{pid}") + 1)
        rank1 = sum(rank == 1 for rank in ranks) / len(ranks)
        top3 = sum(rank <= 3 for rank in ranks) / len(ranks)
        assert rank1 >= 0.6 and top3 >= 0.9, ranks

        # Filters: another camera's entries only; a time window; a score floor.
        probe = person_jpeg(1, 1, 11, seed=0)
        other = query(client, probe, camera="cam-1", exclude_same_camera="true")
        assert other["results"] and all(r["camera"] == "cam-2" for r in other["results"])
        assert all(r["matches"] == 2 for r in other["results"])
        late = query(client, probe, captured_after="2026-03-02T00:00:00Z")
        assert all(r["camera"] == "cam-2" for r in late["results"])
        floor = query(client, probe, min_score=0.999)
        assert all(r["score"] >= 0.999 for r in floor["results"])
        assert len(query(client, probe, top_k=2)["results"]) == 2

        # Delete one entry: it is gone from reads and from search.
        gone = entry_ids[2][0]
        assert client.delete(f"/gallery/{gone}").json() == {
            "id": gone,
            "identity": "person-2",
            "deleted": True,
        }
        assert client.get(f"/gallery/{gone}").status_code == 404
        after = query(client, person_jpeg(2, 1, 0, seed=0), top_k=6)
        assert after["gallery_size"] == 29
        assert gone not in {r["entry_id"] for r in after["results"]}

        # Erase an identity: rows, vectors and stored crops.
        crops = [p for p in service.settings.crop_store_dir.rglob("*") if p.is_file()]
        assert len(crops) == 29
        erased = client.delete("/identities/person-1")
        assert erased.json() == {"identity": "person-1", "deleted_entries": 5}
        answer = query(client, person_jpeg(1, 1, 0, seed=0), top_k=6)
        assert "person-1" not in {r["identity"] for r in answer["results"]}
        assert answer["gallery_size"] == 24
        assert len([p for p in service.settings.crop_store_dir.rglob("*") if p.is_file()]) == 24
        assert client.get("/identities/person-1").status_code == 404


def test_idempotent_enrollment_and_cross_identity_conflict(shared: TestClient) -> None:
    identity, other = unique("ida"), unique("other")
    first, second, third = (person_jpeg(30, 1, shot, seed=4) for shot in range(3))
    created = shared.post("/gallery", data={"identity": identity}, files=files("a", first, second))
    assert created.status_code == 201
    original = created.json()["entries"]
    assert [e["created"] for e in original] == [True, True]

    again = shared.post("/gallery", data={"identity": identity}, files=files("a", first, second))
    assert again.status_code == 201
    assert [(e["id"], e["created"]) for e in again.json()["entries"]] == [
        (original[0]["id"], False),
        (original[1]["id"], False),
    ]
    mixed = shared.post(
        "/gallery", data={"identity": identity}, files=files("m", second, third, third)
    )
    entries = mixed.json()["entries"]
    assert [e["created"] for e in entries] == [False, True, False]
    assert entries[1]["id"] == entries[2]["id"]

    conflict = shared.post(
        "/gallery",
        data={"identity": other},
        files=files("c", person_jpeg(31, 1, 0, seed=4), first),
    )
    assert conflict.status_code == 409
    error = conflict.json()["error"]
    assert error["code"] == "duplicate_image"
    assert error["details"]["holder_identity"] == identity
    assert error["details"]["index"] == 1
    assert identity in error["message"]
    # All-or-nothing: the good first image of the refused request was not stored.
    assert shared.get("/gallery", params={"identity": other}).json()["items"] == []
    assert len(shared.get("/gallery", params={"identity": identity}).json()["items"]) == 3


def test_listing_reading_and_pagination(shared: TestClient) -> None:
    identity = unique("list")
    images = [person_jpeg(40, 1, shot, seed=4) for shot in range(3)]
    metadata = {"track": 118, "tags": ["blue coat"], "nested": {"ok": True}}
    response = shared.post(
        "/gallery",
        data={
            "identity": identity,
            "camera": "gate-1",
            "captured_at": "2026-02-03T04:05:06",
            "source": "nvr-7",
            "metadata": json.dumps(metadata),
        },
        files=files("l", *images),
    )
    assert response.status_code == 201
    ids = [entry["id"] for entry in response.json()["entries"]]
    shared.post(
        "/gallery",
        data={"identity": identity, "camera": "gate-2"},
        files=files("l", person_jpeg(40, 2, 0, seed=4)),
    )

    entry = shared.get(f"/gallery/{ids[0]}").json()
    assert entry["metadata"] == metadata
    assert entry["captured_at"] == "2026-02-03T04:05:06Z"  # no zone given: UTC
    assert entry["source"] == "nvr-7" and entry["camera"] == "gate-1"
    assert entry["image_format"] == "jpeg" and entry["byte_size"] == len(images[0])
    assert "embedding" not in entry
    image = shared.get(f"/gallery/{ids[0]}/image")
    assert image.content == images[0] and image.headers["content-type"] == "image/jpeg"
    assert image.headers["x-content-type-options"] == "nosniff"

    seen, cursor = [], None
    while True:
        params = {"identity": identity, "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = shared.get("/gallery", params=params).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[:3] == ids and len(seen) == len(set(seen)) == 4
    by_camera = shared.get("/gallery", params={"identity": identity, "camera": "gate-2"}).json()
    assert [item["camera"] for item in by_camera["items"]] == ["gate-2"]
    forged = base64.urlsafe_b64encode(b'{"k":"entry","v":"1 OR 1=1"}').decode()
    assert shared.get("/gallery", params={"cursor": forged}).status_code == 422

    detail = shared.get("/identities/" + quote(identity)).json()
    assert detail["entry_count"] == 4
    assert detail["cameras"] == ["gate-1", "gate-2"]
    assert [item["id"] for item in detail["entries"]][:3] == ids
    names, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = shared.get("/identities", params=params).json()
        names.extend(item["identity"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert identity in names and len(names) == len(set(names))


def test_empty_gallery_and_operations_endpoints(service: ServiceHandle) -> None:
    with service.client() as client:
        answer = query(client, person_jpeg(1))
        assert answer["results"] == [] and answer["gallery_size"] == 0
        assert client.get("/health").json() == {"status": "ok"}
        ready = client.get("/ready").json()
        assert ready["status"] == "ready"
        assert {"model", "database", "model_version", "index"} <= set(ready["checks"])
        metrics = client.get("/metrics").text
        for name in (
            "reid_http_request_duration_seconds_bucket",
            "reid_batch_size_bucket",
            "reid_gallery_entries",
            "reid_forward_seconds",
        ):
            assert name in metrics
        client.post("/query", files={"image": ("q.jpg", b"nope", "image/jpeg")})
        assert 'reid_errors_total{code="invalid_image"} 1.0' in client.get("/metrics").text
        schema = client.get("/openapi.json").json()
        body_ref = schema["paths"]["/gallery"]["post"]["requestBody"]["content"][
            "multipart/form-data"
        ]["schema"]["$ref"]
        body = schema["components"]["schemas"][body_ref.rsplit("/", 1)[-1]]
        assert body["properties"]["identity"]["examples"] == ["alice"]
        assert schema["components"]["schemas"]["QueryResult"]["properties"]["score"]["examples"]
        assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])


def test_a_crop_that_cannot_be_stored_stores_nothing(service: ServiceHandle) -> None:
    good, blocked = person_jpeg(60, 1, 0, seed=4), person_jpeg(60, 1, 1, seed=4)
    sha = hashlib.sha256(blocked).hexdigest()
    with service.client() as client:
        # A plain file where the crop's directory must go: the write fails (ENOTDIR).
        (service.settings.crop_store_dir / sha[:2]).write_bytes(b"in the way")
        response = client.post("/gallery", data={"identity": "x"}, files=files("s", good, blocked))
        assert response.status_code == 507
        assert response.json()["error"]["code"] == "storage_error"
        assert client.get("/gallery").json()["items"] == []
        stored = [p for p in service.settings.crop_store_dir.rglob("*") if p.is_file()]
        assert [p.name for p in stored] == [sha[:2]]  # the good crop was removed again
