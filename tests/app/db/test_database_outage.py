"""Losing the database mid-flight is a retryable 503 ``database_unavailable``, never a 500.

The outage is real: the service reaches PostgreSQL through a relay that the test cuts,
so its pooled connections break and reconnecting is refused, exactly as when the
database host goes away. Only PostgreSQL can vanish under a running service like this.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from service_kit import DatabaseRelay, ServiceHandle, files, person_jpeg

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

IDENTITY = "outage-1"


def _requests(client: TestClient, entry_id: int) -> dict[str, Callable[[], httpx.Response]]:
    """Every route that reads or writes gallery rows, by name."""
    query = {"image": ("q.jpg", person_jpeg(7, 2, 0, seed=5), "image/jpeg")}
    crop = files("new", person_jpeg(8, 1, 0, seed=5))
    return {
        "enroll": lambda: client.post("/gallery", data={"identity": "outage-2"}, files=crop),
        "list": lambda: client.get("/gallery"),
        "entry": lambda: client.get(f"/gallery/{entry_id}"),
        "entry image": lambda: client.get(f"/gallery/{entry_id}/image"),
        "delete entry": lambda: client.delete(f"/gallery/{entry_id}"),
        "identities": lambda: client.get("/identities"),
        "identity": lambda: client.get(f"/identities/{IDENTITY}"),
        "erase identity": lambda: client.delete(f"/identities/{IDENTITY}"),
        "query": lambda: client.post("/query", files=query),
        "evaluation status": lambda: client.get("/evaluate/1"),
    }


def test_outage_answers_503_until_the_database_is_back(
    make_service: Callable[..., ServiceHandle],
) -> None:
    service = make_service()
    url = service.settings.resolved_database_url
    relay = DatabaseRelay(url)
    try:
        with service.with_settings(database_url=relay.url).client() as client:
            enrolled = client.post(
                "/gallery", data={"identity": IDENTITY}, files=files("o", person_jpeg(7, seed=5))
            )
            assert enrolled.status_code == 201, enrolled.text
            entry_id = enrolled.json()["entries"][0]["id"]
            requests = _requests(client, entry_id)

            relay.cut()
            for name, send in requests.items():
                response = send()
                assert response.status_code == 503, (name, response.text)
                assert response.json()["error"]["code"] == "database_unavailable", name
                assert response.json()["error"]["details"] is None, name
                assert response.headers["retry-after"] == "5", name
                assert "Traceback" not in response.text, name
            ready = client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["status"] == "not_ready"
            assert ready.json()["checks"]["database"]["ok"] is False
            assert client.get("/health").status_code == 200  # alive: no restart wanted
            expected = f'reid_errors_total{{code="database_unavailable"}} {len(requests)}.0'
            assert expected in client.get("/metrics").text

            relay = DatabaseRelay(url, port=relay.port)  # the database is back
            assert client.get("/ready").status_code == 200
            listed = client.get("/gallery")
            assert listed.status_code == 200
            # "nothing was changed": the refused enroll added nothing, the deletes removed nothing.
            assert [item["identity"] for item in listed.json()["items"]] == [IDENTITY]
    finally:
        relay.cut()
