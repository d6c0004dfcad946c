"""Evaluation jobs: Market zips, labelled queries, hostile zips, restarts."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_kit import ServiceHandle, files, person_jpeg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.db.models import EvaluationJob
from model.evaluation.layouts.market import parse_market_filename
from model.evaluation.layouts.split_folders import GALLERY_FOLDER, QUERY_FOLDER
from training.data.synthetic import generate_synthetic_market


@pytest.fixture(scope="module")
def market_zip(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, int]]:
    root = generate_synthetic_market(
        tmp_path_factory.mktemp("market") / "m",
        num_train_ids=1,
        num_test_ids=4,
        num_cameras=2,
        images_per_id_per_camera=2,
        num_distractors=2,
        num_junk=1,
    )
    buffer = io.BytesIO()
    counts = {QUERY_FOLDER: 0, GALLERY_FOLDER: 0}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder in (QUERY_FOLDER, GALLERY_FOLDER):
            for path in sorted((root / folder).iterdir()):
                archive.write(path, f"Market-synthetic/{folder}/{path.name}")
                parsed = parse_market_filename(path.name)
                if parsed is not None and parsed[0] != -1:
                    counts[folder] += 1
        archive.writestr("Market-synthetic/readme.txt", "not an image, ignored")
    return buffer.getvalue(), counts


def wait_for(client: TestClient, job_id: str, timeout_s: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get(f"/evaluate/{job_id}").json()
        assert 0.0 <= status["progress"] <= 1.0
        if status["status"] in ("succeeded", "failed"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def submit_zip(client: TestClient, data: bytes, name: str = "market.zip"):
    return client.post("/evaluate", files={"dataset": (name, data, "application/zip")})


def test_market_zip_job(service: ServiceHandle, market_zip: tuple[bytes, dict[str, int]]) -> None:
    data, counts = market_zip
    with service.client() as client:
        accepted = submit_zip(client, data)
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert body["status"] == "queued" and body["kind"] == "market_zip"
        status = wait_for(client, body["id"])
        assert status["status"] == "succeeded", status
        assert status["progress"] == 1.0
        result = status["result"]
        metrics = result["metrics"]
        assert metrics["num_query"] == counts[QUERY_FOLDER]
        assert metrics["num_gallery"] == counts[GALLERY_FOLDER]
        assert 0.0 <= metrics["mAP"] <= 1.0 and 0.0 <= metrics["mINP"] <= 1.0
        assert metrics["rank1"] <= metrics["rank5"] <= metrics["rank10"] <= 1.0
        assert len(metrics["cmc"]) == 50
        assert result["counts"]["junk_dropped"] == 1
        assert result["counts"]["unrecognised_files"] == 1
        assert {"embed_s", "metrics_s", "total_s"} <= set(result["timings"])
        # In isolation: the gallery was not touched, and the upload was cleaned up.
        assert client.get("/gallery").json()["items"] == []
        assert list(service.settings.jobs_dir.iterdir()) == []


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


JPEG = person_jpeg(1, 1, 0)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_hostile_and_invalid_zips_are_refused(
    make_service: Callable[..., ServiceHandle],
) -> None:
    service = make_service(
        zip_max_files=6, zip_max_uncompressed_bytes=8 * 1024 * 1024, max_file_bytes=6 * 1024 * 1024
    )
    good = {f"query/0001_c1s1_00000{i}_00.jpg": JPEG for i in range(2)}
    good["bounding_box_test/0001_c2s1_000001_00.jpg"] = JPEG
    cases = [
        (zip_of({**good, "../../etc/evil.jpg": JPEG}), 422, "unsafe_zip"),
        (zip_of({**good, "/abs/0001_c1s1_000009_00.jpg": JPEG}), 422, "unsafe_zip"),
        (zip_of({**good, "query\\..\\x.jpg": JPEG}), 422, "unsafe_zip"),
        (
            zip_of({**good, **{f"query/{i}.jpg": JPEG for i in range(10)}}),
            413,
            "zip_too_many_files",
        ),
        # 5 MiB of zeros deflates to a few KB: a bomb by ratio.
        (zip_of({**good, "bounding_box_test/pad.bin": bytes(5 * 1024 * 1024)}), 413, "zip_bomb"),
        # Stored (no compression), so only the total size is over the limit.
        (
            zip_of(
                {
                    **good,
                    "a.bin": bytes(5 * 1024 * 1024),
                    "b.bin": bytes(5 * 1024 * 1024),
                },
                zipfile.ZIP_STORED,
            ),
            413,
            "zip_too_large",
        ),
        (b"PK\x03\x04 this is not really a zip", 422, "invalid_zip"),
        (zip_of({"query/0001_c1s1_000001_00.jpg": JPEG}), 422, "invalid_dataset_layout"),
    ]
    with service.client() as client:
        for payload, status, code in cases:
            response = submit_zip(client, payload)
            assert response.status_code == status, (code, response.text)
            assert response.json()["error"]["code"] == code
        assert list(service.settings.jobs_dir.iterdir()) == []
        neither = client.post("/evaluate", data={"identities": "[]"})
        assert neither.json()["error"]["code"] == "invalid_evaluation_request"
        both = client.post(
            "/evaluate",
            files=[("dataset", ("m.zip", zip_of(good), "application/zip")), *files("q", JPEG)],
        )
        assert both.json()["error"]["code"] == "invalid_evaluation_request"


def test_labelled_queries_against_the_live_gallery(service: ServiceHandle) -> None:
    with service.client() as client:
        for pid in (1, 2, 3):
            images = [person_jpeg(pid, 1, shot, seed=9) for shot in range(2)]
            response = client.post(
                "/gallery",
                data={"identity": f"person-{pid}", "camera": "cam-a"},
                files=files("e", *images),
            )
            assert response.status_code == 201
        queries = [person_jpeg(pid, 2, 5, seed=9) for pid in (1, 2, 3)]
        labels = ["person-1", "person-2", "person-3"]
        bad = client.post(
            "/evaluate", files=files("q", *queries), data={"identities": json.dumps(labels[:2])}
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_labels"
        accepted = client.post(
            "/evaluate",
            files=files("q", *queries, b"not an image"),
            data={
                "identities": json.dumps([*labels, "person-1"]),
                "cameras": json.dumps(["cam-b", "cam-b", None, "cam-b"]),
            },
        )
        assert accepted.status_code == 202, accepted.text
        status = wait_for(client, accepted.json()["id"])
        assert status["status"] == "succeeded", status
        result = status["result"]
        assert result["metrics"]["num_query"] == 3
        assert result["metrics"]["num_valid_query"] == 3
        assert result["metrics"]["num_gallery"] == 6
        assert result["counts"]["undecodable_skipped"] == 1
        assert result["skipped"] == [{"file": "q_3.jpg", "code": "invalid_image"}]

        # The decoded queries' best entries, by plain cosine: what /query scores.
        lists = result["ranked_lists"]
        assert [(row["file"], row["identity"], row["camera"]) for row in lists] == [
            ("q_0.jpg", "person-1", "cam-b"),
            ("q_1.jpg", "person-2", "cam-b"),
            ("q_2.jpg", "person-3", None),
        ]
        enrolled = {item["id"]: item["identity"] for item in client.get("/gallery").json()["items"]}
        for row, image in zip(lists, queries, strict=True):
            ranked = row["ranked"]
            assert {hit["entry_id"] for hit in ranked} == set(enrolled)  # 6 < 10: all of them
            assert [hit["score"] for hit in ranked] == sorted(
                (hit["score"] for hit in ranked), reverse=True
            )
            for hit in ranked:
                assert hit["identity"] == enrolled[hit["entry_id"]]
                assert hit["correct"] == (hit["identity"] == row["identity"])
            answer = client.post("/query", files={"image": ("q.jpg", image, "image/jpeg")})
            best = answer.json()["results"][0]
            assert ranked[0]["entry_id"] == best["entry_id"]
            assert abs(ranked[0]["score"] - best["score"]) < 2e-3

        # Re-ranking changes the metrics' distances, never the listed cosine ranking.
        reranked = client.post(
            "/evaluate",
            files=files("q", *queries),
            data={
                "identities": json.dumps(labels),
                "cameras": json.dumps(["cam-b"] * 3),
                "rerank": "true",
            },
        )
        assert reranked.status_code == 202, reranked.text
        rerank_status = wait_for(client, reranked.json()["id"])
        assert rerank_status["status"] == "succeeded", rerank_status
        assert rerank_status["result"]["ranking"]["rerank"] is not None
        assert rerank_status["result"]["ranked_lists"][:2] == lists[:2]


def test_job_cut_off_by_a_restart_shows_failed(service: ServiceHandle) -> None:
    with service.client():
        pass  # create the schema
    engine = create_engine(service.settings.resolved_database_url)
    with Session(engine) as session:
        for job_id, state in (("a" * 32, "running"), ("b" * 32, "queued")):
            session.add(
                EvaluationJob(
                    id=job_id,
                    kind="market_zip",
                    status=state,
                    progress=0.4,
                    model_version="x",
                    params={},
                )
            )
        session.commit()
    engine.dispose()
    leftover = service.settings.jobs_dir / ("a" * 32)
    leftover.mkdir(parents=True)
    (leftover / "dataset.zip").write_bytes(b"partial upload")
    with service.client() as client:
        for job_id in ("a" * 32, "b" * 32):
            status = client.get(f"/evaluate/{job_id}").json()
            assert status["status"] == "failed"
            assert status["error"]["code"] == "interrupted"
            assert "restarted" in status["error"]["message"]
            assert status["finished_at"] is not None
        assert not Path(leftover).exists()


def test_job_cut_off_by_a_shutdown_shows_failed(service: ServiceHandle) -> None:
    members = {f"query/{pid:04d}_c1s1_000001_00.jpg": person_jpeg(pid, 1) for pid in (1, 2)}
    members.update(
        {
            f"bounding_box_test/{n % 40 + 1:04d}_c2s1_{n:06d}_00.jpg": person_jpeg(n % 40 + 1, 2, n)
            for n in range(400)
        }
    )
    with service.client() as client:
        accepted = submit_zip(client, zip_of(members, zipfile.ZIP_STORED))
        assert accepted.status_code == 202
        job_id = accepted.json()["id"]
    # Leaving the block shut the service down while ~400 crops were still to embed.
    with service.client() as client:
        status = client.get(f"/evaluate/{job_id}").json()
        assert status["status"] == "failed"
        assert status["error"]["code"] == "interrupted"
        assert list(service.settings.jobs_dir.iterdir()) == []


def test_market_zip_job_with_reranking_and_query_expansion(
    service: ServiceHandle, market_zip: tuple[bytes, dict[str, int]]
) -> None:
    data, counts = market_zip
    with service.client() as client:
        accepted = client.post(
            "/evaluate",
            files={"dataset": ("market.zip", data, "application/zip")},
            data={"rerank": "true", "aqe": "2"},
        )
        assert accepted.status_code == 202, accepted.text
        status = wait_for(client, accepted.json()["id"])
        assert status["status"] == "succeeded", status
        result = status["result"]
        assert result["ranking"] == {"rerank": {"k1": 20, "k2": 6, "lambda": 0.3}, "aqe": {"k": 2}}
        assert result["metrics"]["num_query"] == counts[QUERY_FOLDER]
        assert 0.0 <= result["metrics"]["mAP"] <= 1.0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_bad_ranking_options_are_refused(
    make_service: Callable[..., ServiceHandle], market_zip: tuple[bytes, dict[str, int]]
) -> None:
    data, counts = market_zip
    too_many = str(counts[GALLERY_FOLDER] + 1)
    cases = [
        ({"rerank": "maybe"}, "rerank must be true or false"),
        ({"aqe": "0"}, "aqe must be a positive integer"),
        ({"aqe": "2.5"}, "aqe must be a positive integer"),
        ({"aqe": too_many}, f"aqe={too_many} needs at least {too_many} gallery items"),
    ]
    with make_service().client() as client:
        for fields, message in cases:
            response = client.post(
                "/evaluate", files={"dataset": ("m.zip", data, "application/zip")}, data=fields
            )
            assert response.status_code == 422, response.text
            error = response.json()["error"]
            assert error["code"] == "invalid_evaluation_options"
            assert message in error["message"]
