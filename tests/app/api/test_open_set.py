"""POST /query's open-set decision: match or unknown at the calibrated threshold, edges included.

The calibrated services load the test checkpoint with ``known_calibration`` in its card,
whose thresholds have a closed form (``known_threshold``), so every threshold the service
applies is checked against arithmetic that does not go through the calibration code.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from service_kit import (
    ServiceHandle,
    assert_error,
    files,
    known_calibration,
    known_rate,
    known_threshold,
    person_jpeg,
)

from app.settings import Settings
from model.checkpoint import read_model_card, write_model_card

DECISION_KEYS = {
    "status",
    "identity",
    "score",
    "threshold",
    "false_positive_rate",
    "calibration",
    "gallery_identities",
    "gallery_entries",
}


@pytest.fixture
def calibrated(
    make_service: Callable[..., ServiceHandle], calibrated_checkpoint: Path
) -> ServiceHandle:
    return make_service(model_path=calibrated_checkpoint)


def enroll(client: TestClient, identity: str, pid: int, **fields: str) -> None:
    images = [person_jpeg(pid, 1, shot, seed=5) for shot in range(2)]
    response = client.post(
        "/gallery", data={"identity": identity, **fields}, files=files(identity, *images)
    )
    assert response.status_code == 201, response.text


def query(client: TestClient, pid: int, **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/query",
        data={key: str(value) for key, value in fields.items()},
        files={"image": ("q.jpg", person_jpeg(pid, 2, 7, seed=5), "image/jpeg")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["decision"]) == DECISION_KEYS
    return body


def test_an_uncalibrated_model_answers_uncalibrated(service: ServiceHandle) -> None:
    uncalibrated = dict.fromkeys(DECISION_KEYS - {"status"}) | {"status": "uncalibrated"}
    with service.client() as client:
        assert query(client, 1)["decision"] == uncalibrated  # empty gallery
        enroll(client, "alice", 1)
        body = query(client, 1, max_false_positive_rate=0.2)
        assert body["results"][0]["identity"] == "alice"
        assert body["decision"] == uncalibrated


def test_an_empty_gallery_is_unknown(calibrated: ServiceHandle) -> None:
    with calibrated.client() as client:
        body = query(client, 1)
    assert body["results"] == []
    assert body["decision"] == {
        "status": "unknown",
        "identity": None,
        "score": None,
        "threshold": None,
        "false_positive_rate": None,
        "calibration": "model",
        "gallery_identities": 0,
        "gallery_entries": 0,
    }


def test_one_identity_is_matched_exactly_when_its_score_reaches_the_threshold(
    calibrated: ServiceHandle,
) -> None:
    with calibrated.client() as client:
        enroll(client, "alice", 1)
        default = query(client, 1)
        decision = default["decision"]
        score = default["results"][0]["score"]
        assert decision["gallery_identities"] == 1 and decision["calibration"] == "model"
        assert decision["threshold"] == pytest.approx(known_threshold(0.01, 1), abs=1e-9)
        assert decision["false_positive_rate"] == pytest.approx(0.01, rel=1e-6)
        assert decision["score"] == pytest.approx(score, abs=1e-6)
        assert 0.0 < score < 1.0, "the test needs a score inside the known tail"
        # Operating points just either side of the one at which the threshold is this score.
        at_score = known_rate(score, 1)
        looser = min(0.5, 2.0 * at_score)
        stricter = at_score / 2.0
        matched = query(client, 1, max_false_positive_rate=looser)["decision"]
        missed = query(client, 1, max_false_positive_rate=stricter)["decision"]
    assert matched["threshold"] < score < missed["threshold"]
    assert matched["threshold"] == pytest.approx(known_threshold(looser, 1), abs=1e-9)
    assert missed["threshold"] == pytest.approx(known_threshold(stricter, 1), abs=1e-9)
    assert matched["status"] == "match" and matched["identity"] == "alice"
    assert missed["status"] == "unknown" and missed["identity"] is None
    assert missed["score"] == pytest.approx(score, abs=1e-6)
    assert missed["false_positive_rate"] == pytest.approx(stricter, rel=1e-6)


def test_the_threshold_is_for_the_identities_the_filters_leave(calibrated: ServiceHandle) -> None:
    with calibrated.client() as client:
        enroll(client, "a", 1, camera="c1", captured_at="2026-01-01T00:00:00Z")
        enroll(client, "b", 2, camera="c2", captured_at="2026-02-01T00:00:00Z")
        enroll(client, "c", 3, camera="c1", captured_at="2026-01-10T00:00:00Z")
        response = client.post(
            "/gallery",
            data={"identity": "c"},  # no camera, no capture time
            files=files("c-extra", person_jpeg(3, 3, 9, seed=5)),
        )
        assert response.status_code == 201
        jan = {"captured_after": "2026-01-01T00:00:00Z", "captured_before": "2026-01-31T00:00:00Z"}
        cases: list[tuple[dict[str, Any], int]] = [
            ({}, 3),
            ({"camera": "c1", "exclude_same_camera": "true"}, 2),  # c keeps its camera-less entry
            ({"camera": "c1"}, 3),  # naming the camera alone filters nothing
            ({"captured_after": "2026-01-15T00:00:00Z"}, 1),
            (jan, 2),
            ({**jan, "camera": "c1", "exclude_same_camera": "true"}, 0),  # every entry filtered
            ({"min_score": "0.999"}, 3),  # min_score shortens the list, not the gallery
        ]
        for fields, identities in cases:
            body = query(client, 1, max_false_positive_rate=0.05, **fields)
            decision = body["decision"]
            assert decision["gallery_identities"] == identities, fields
            if identities == 0:
                assert body["results"] == []
                assert decision["status"] == "unknown" and decision["threshold"] is None
            else:
                expected = known_threshold(0.05, identities)
                assert decision["threshold"] == pytest.approx(expected, abs=1e-9), fields
                assert decision["false_positive_rate"] == pytest.approx(0.05, rel=1e-6)
                assert {r["identity"] for r in body["results"]} <= {"a", "b", "c"}


@pytest.fixture
def entries_calibrated(
    make_service: Callable[..., ServiceHandle], checkpoint: Path, tmp_path: Path
) -> ServiceHandle:
    """``known_calibration`` made with 2 entries per identity, entries independent (exponent
    1): a gallery holding m entries per identity acts like N m / 2 independent identities."""
    directory = tmp_path / "entries-calibrated"
    shutil.copytree(checkpoint, directory)
    card = read_model_card(directory)
    card.calibration = dataclasses.replace(
        known_calibration(), entries_per_identity=2.0, entries_exponent=1.0
    )
    write_model_card(directory, card)
    return make_service(model_path=directory)


def test_the_threshold_is_for_the_entries_the_filters_leave(
    entries_calibrated: ServiceHandle,
) -> None:
    with entries_calibrated.client() as client:
        enroll(client, "a", 1, camera="c1")  # 2 entries
        shots = [person_jpeg(2, 1, shot, seed=5) for shot in range(6)]
        response = client.post(
            "/gallery", data={"identity": "b", "camera": "c2"}, files=files("b", *shots)
        )
        assert response.status_code == 201
        for fields, identities, entries in [
            ({}, 2, 8),  # 4 entries per identity: like 2 x 4 / 2 = 4 independent ones
            ({"camera": "c2", "exclude_same_camera": "true"}, 1, 2),  # a's 2: like 1
        ]:
            decision = query(client, 1, max_false_positive_rate=0.05, **fields)["decision"]
            assert (decision["gallery_identities"], decision["gallery_entries"]) == (
                identities,
                entries,
            )
            effective = identities * (entries / identities) / 2
            expected = known_threshold(0.05, effective)
            assert decision["threshold"] == pytest.approx(expected, abs=1e-9), fields
            assert decision["false_positive_rate"] == pytest.approx(0.05, rel=1e-6)


def test_min_score_above_the_threshold_does_not_change_the_decision(
    calibrated: ServiceHandle,
) -> None:
    with calibrated.client() as client:
        enroll(client, "alice", 1)
        plain = query(client, 1, max_false_positive_rate=0.5)
        hidden = query(client, 1, max_false_positive_rate=0.5, min_score=1.0)
    assert plain["decision"]["status"] == "match"  # threshold 0 at 50% with one identity
    assert hidden["results"] == []
    assert hidden["decision"] == plain["decision"]


def test_the_default_operating_point_is_the_setting(
    make_service: Callable[..., ServiceHandle], calibrated_checkpoint: Path
) -> None:
    service = make_service(model_path=calibrated_checkpoint, open_set_fpir=0.2)
    with service.client() as client:
        enroll(client, "alice", 1)
        decision = query(client, 1)["decision"]
    assert decision["false_positive_rate"] == pytest.approx(0.2, rel=1e-6)
    assert decision["threshold"] == pytest.approx(known_threshold(0.2, 1), abs=1e-9)


@pytest.mark.parametrize("value", ["0", "-1", "0.6", "abc", "nan", "inf", "-inf"])
def test_bad_rates_are_refused(shared: TestClient, value: str) -> None:
    response = shared.post(
        "/query",
        data={"max_false_positive_rate": value},
        files={"image": ("q.jpg", person_jpeg(1, 2, 7, seed=5), "image/jpeg")},
    )
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize("value", [0.0, -0.1, 0.51, float("nan"), float("inf")])
def test_bad_default_rates_stop_start_up(value: float, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="open_set_fpir"):
        Settings(data_dir=tmp_path, open_set_fpir=value)
