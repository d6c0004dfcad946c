"""Nothing is accepted that a later read cannot return, on SQLite and on PostgreSQL.

Found by an abuse corpus: metadata nested too deeply, holding a lone surrogate
or a number past a double's range, and timestamps whose UTC form leaves the
calendar, were stored (or crashed the request) and then broke every read of
the entry. The classes are covered by property tests in tests/app/gallery/;
these are the examples, end to end, on both databases.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from service_kit import files, person_jpeg, unique

NESTED_40 = '{"a":' * 40 + "0" + "}" * 40  # deeper than allowed, within the byte limit


@pytest.mark.parametrize(
    "metadata",
    [
        NESTED_40,
        '{"a": "\\ud800"}',  # a lone surrogate, escaped as JSON allows
        '{"\\udfff": 1}',  # ... in a key
        '{"a": 1e400}',  # parses to infinity
        '{"a": [-1e999]}',
    ],
    ids=["deep", "surrogate", "surrogate-key", "huge", "huge-negative"],
)
def test_unstorable_metadata_is_refused_and_nothing_is_stored(
    shared: TestClient, metadata: str
) -> None:
    identity = unique("meta")
    response = shared.post(
        "/gallery",
        data={"identity": identity, "metadata": metadata},
        files=files("m", person_jpeg(3, 1, 0, seed=41)),
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_metadata"
    assert shared.get("/gallery", params={"identity": identity}).json()["items"] == []


def test_storable_metadata_comes_back_exactly(shared: TestClient) -> None:
    identity = unique("meta")
    metadata = '{"a": ' + "[" * 31 + "1.5e300" + "]" * 31 + ', "é": "\\u00e9\\ud83d\\ude00"}'
    response = shared.post(
        "/gallery",
        data={"identity": identity, "metadata": metadata},
        files=files("m", person_jpeg(3, 1, 1, seed=41)),
    )
    assert response.status_code == 201, response.text
    entry_id = response.json()["entries"][0]["id"]
    stored = shared.get(f"/gallery/{entry_id}").json()["metadata"]
    inner = stored["a"]
    for _ in range(31):
        inner = inner[0]
    assert inner == 1.5e300 and stored["é"] == "é😀"


@pytest.mark.parametrize("captured_at", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_capture_times_past_the_calendar_are_refused(shared: TestClient, captured_at: str) -> None:
    identity = unique("time")
    response = shared.post(
        "/gallery",
        data={"identity": identity, "captured_at": captured_at},
        files=files("t", person_jpeg(3, 1, 2, seed=41)),
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_timestamp" and error["details"] == {"field": "captured_at"}
    assert shared.get("/gallery", params={"identity": identity}).json()["items"] == []


@pytest.mark.parametrize("field", ["captured_after", "captured_before"])
@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_query_windows_past_the_calendar_are_refused(
    shared: TestClient, field: str, value: str
) -> None:
    response = shared.post(
        "/query",
        data={field: value},
        files={"image": ("q.jpg", person_jpeg(3, 1, 3, seed=41), "image/jpeg")},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"] == {"field": field}


@pytest.mark.parametrize("field", ["identities", "cameras"])
def test_deeply_nested_evaluation_labels_are_refused(shared: TestClient, field: str) -> None:
    labels = {"identities": '["a"]', "cameras": '["c"]'}
    labels[field] = "[" * 10_000 + "]" * 10_000
    response = shared.post(
        "/evaluate",
        data=labels,
        files=[("images", ("q.jpg", person_jpeg(3, 1, 4, seed=41), "image/jpeg"))],
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_labels"
