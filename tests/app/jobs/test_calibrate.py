"""Site calibration: fitted on labelled crops against the live gallery, kept per model."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_kit import ServiceHandle, assert_error, files, known_threshold, person_jpeg
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.db.models import SiteCalibration
from model.evaluation.calibration import Calibration

ENROLLED = range(1, 7)  # six identities in the gallery
STRANGERS = range(20, 28)  # eight people never enrolled


@pytest.fixture
def calibrated(
    make_service: Callable[..., ServiceHandle], calibrated_checkpoint: Path
) -> ServiceHandle:
    return make_service(model_path=calibrated_checkpoint)


def enroll_gallery(client: TestClient) -> None:
    for pid in ENROLLED:
        images = [person_jpeg(pid, 1, shot, seed=11) for shot in range(2)]
        response = client.post(
            "/gallery", data={"identity": f"p{pid}"}, files=files(f"p{pid}", *images)
        )
        assert response.status_code == 201, response.text


def submit(client: TestClient, crops: list[bytes], identities: list[str]) -> Any:
    return client.post(
        "/calibrate", files=files("probe", *crops), data={"identities": json.dumps(identities)}
    )


def wait_for(client: TestClient, job_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get(f"/calibrate/{job_id}").json()
        if status["status"] in ("succeeded", "failed"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def calibrate(client: TestClient) -> dict[str, Any]:
    crops = [person_jpeg(pid, 2, 5, seed=11) for pid in ENROLLED]
    names = [f"p{pid}" for pid in ENROLLED]
    for pid in STRANGERS:
        crops += [person_jpeg(pid, 2, shot, seed=11) for shot in range(3)]
        names += [f"stranger{pid}"] * 3
    crops.append(person_jpeg(1, 1, 0, seed=11))  # enrolled bytes: skipped
    names.append("p1")
    accepted = submit(client, crops, names)
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["kind"] == "site_calibration"
    assert body["status_url"] == f"/calibrate/{body['id']}"
    status = wait_for(client, body["id"])
    assert status["status"] == "succeeded", status
    return status


def stored_calibration(url: str) -> Calibration:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            rows = session.scalars(select(SiteCalibration)).all()
            assert len(rows) == 1
            return Calibration.from_dict(rows[0].calibration)
    finally:
        engine.dispose()


def decision(client: TestClient) -> dict[str, Any]:
    response = client.post(
        "/query",
        data={"max_false_positive_rate": "0.1"},
        files={"image": ("q.jpg", person_jpeg(3, 2, 9, seed=11), "image/jpeg")},
    )
    assert response.status_code == 200, response.text
    return response.json()["decision"]


def test_a_site_calibration_takes_precedence_survives_restarts_and_deletes_to_the_card(
    calibrated: ServiceHandle,
) -> None:
    url = calibrated.settings.resolved_database_url
    with calibrated.client() as client:
        enroll_gallery(client)
        assert decision(client)["calibration"] == "model"
        status = calibrate(client)
        result = status["result"]
        split = result["split"]
        # Six crops of the six enrolled identities: each mated against its own identity
        # and non-mated against the five others; 24 crops of 8 people not enrolled.
        assert split["enrolled_identities"] == 6
        assert split["enrolled_probe_identities"] == 6
        assert split["mated_probes"] == 6 and split["nonmated_probes"] == 6 + 24
        assert split["unenrolled_probe_identities"] == 8
        assert result["counts"]["enrolled_bytes_skipped"] == 1
        counts = result["calibration"]["counts"]
        assert counts["nonmated_probes"] == 30 and counts["impostor_scores"] == 24 * 6 + 6 * 5
        assert result["calibration"]["gallery_identities"] == 6
        points = result["operating_points"]
        assert [p["target_false_positive_rate"] for p in points] == [0.1, 0.01, 0.001]
        assert all(0.0 <= p["observed_false_positive_rate"] <= 1.0 for p in points)
        assert all(0.0 <= p["false_negative_rate"] <= 1.0 for p in points)
        assert_error(client.get(f"/evaluate/{status['id']}"), 404, "job_not_found")

        fitted = stored_calibration(url)
        overview = client.get("/calibration").json()
        assert overview["source"] == "gallery" and overview["job_id"] == status["id"]
        assert overview["gallery_identities"] == 6
        assert overview["split"] == split
        assert overview["counts"] == counts
        spread = overview["fpir_spread"]
        assert spread == result["calibration"]["fpir_spread"]
        assert spread == {key: list(band) for key, band in fitted.fpir_spread.items()}
        assert set(spread) == {"0.1", "0.01", "0.001"}
        assert all(0.0 <= low <= high <= 1.0 for low, high in spread.values())
        assert [p["false_positive_rate"] for p in overview["thresholds"]] == [0.1, 0.01, 0.001]
        for point in overview["thresholds"] + overview["curve"]:
            expected = fitted.threshold_for(point["false_positive_rate"], 6)
            assert point["threshold"] == pytest.approx(expected, abs=1e-12)
        curve = overview["curve"]
        assert len(curve) == 25  # FPIR 50% down to 0.01%: thresholds rise
        assert all(a["threshold"] <= b["threshold"] for a, b in itertools.pairwise(curve))
        site = decision(client)
        assert site["calibration"] == "gallery" and site["gallery_identities"] == 6
        assert site["threshold"] == pytest.approx(fitted.threshold_for(0.1, 6), abs=1e-12)

    with calibrated.client() as client:  # the same database and data directory, restarted
        assert client.get("/calibration").json() == overview
        assert decision(client) == site
        deleted = client.delete("/calibration")
        assert deleted.status_code == 200, deleted.text
        fallback = deleted.json()
        assert fallback["source"] == "model" and fallback["job_id"] is None
        assert fallback["thresholds"][0]["threshold"] == pytest.approx(
            known_threshold(0.1, 6), abs=1e-9
        )
        card = decision(client)
        assert card["calibration"] == "model"
        assert card["threshold"] == pytest.approx(known_threshold(0.1, 6), abs=1e-9)
        assert_error(client.delete("/calibration"), 404, "calibration_not_found")

    with calibrated.client() as client:
        assert client.get("/calibration").json()["source"] == "model"


def test_an_uncalibrated_model_is_calibrated_by_the_site_and_back(service: ServiceHandle) -> None:
    with service.client() as client:
        assert client.get("/calibration").json() == {
            "source": None,
            "model_version": client.get("/model").json()["version"],
            "gallery_identities": 0,
            "thresholds": [],
            "curve": [],
            "calibrated_gallery_identities": None,
            "counts": None,
            "fpir_spread": None,
            "created_at": None,
            "job_id": None,
            "split": None,
        }
        enroll_gallery(client)
        assert decision(client)["status"] == "uncalibrated"
        calibrate(client)
        assert decision(client)["calibration"] == "gallery"
        assert client.delete("/calibration").json()["source"] is None
        assert decision(client)["status"] == "uncalibrated"


def test_refusals_and_failures(calibrated: ServiceHandle) -> None:
    crops = [person_jpeg(1, 2, shot, seed=11) for shot in range(3)]
    with calibrated.client() as client:
        assert_error(submit(client, crops, ["p1"] * 3), 409, "empty_gallery")
        enroll_gallery(client)
        assert_error(submit(client, crops, ["p1"] * 2), 422, "invalid_labels")
        assert_error(submit(client, crops, ["p/1"] * 3), 422, "invalid_identity")
        assert_error(client.get("/calibrate/" + "0" * 32), 404, "job_not_found")
        # One enrolled identity and nobody else: nothing can be non-mated.
        accepted = submit(client, crops, ["p1"] * 3)
        assert accepted.status_code == 202, accepted.text
        failed = wait_for(client, accepted.json()["id"])
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "insufficient_calibration_data"
        # Two strangers against six identities: 12 impostor scores, the fit needs 50.
        few = [person_jpeg(pid, 2, 0, seed=11) for pid in (30, 31)]
        failed = wait_for(client, submit(client, few, ["x30", "x31"]).json()["id"])
        assert failed["error"]["code"] == "insufficient_calibration_data"
        assert "50" in failed["error"]["message"]
        assert client.get("/calibration").json()["source"] == "model"
