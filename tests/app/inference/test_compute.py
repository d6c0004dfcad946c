"""REID_AMP: the bf16 fast path serves the same answers as fp32, and /model says which ran."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from service_kit import ServiceHandle, files, person_jpeg

from model.compute import has_fast_bf16


def enroll_and_query(service: ServiceHandle) -> tuple[dict, dict]:
    with service.client() as client:
        for pid in (1, 2, 3):
            images = [person_jpeg(pid, 1, shot, seed=5) for shot in range(2)]
            response = client.post(
                "/gallery", data={"identity": f"p{pid}"}, files=files(f"p{pid}", *images)
            )
            assert response.status_code == 201, response.text
        answer = client.post(
            "/query",
            data={"top_k": "3"},
            files={"image": ("q.jpg", person_jpeg(2, 1, 0, seed=5), "image/jpeg")},
        )
        assert answer.status_code == 200, answer.text
        return client.get("/model").json(), answer.json()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_bf16_and_fp32_rank_alike(make_service: Callable[..., ServiceHandle]) -> None:
    card_fp32, fp32 = enroll_and_query(make_service(amp="off"))
    card_bf16, bf16 = enroll_and_query(make_service(amp="on"))
    assert (card_fp32["bf16"], card_bf16["bf16"]) == (False, True)
    assert card_fp32["version"] == card_bf16["version"]
    # The query is an enrolled crop: both find it first, with a cosine of about 1.
    for answer in (fp32, bf16):
        assert answer["results"][0]["identity"] == "p2"
        assert answer["results"][0]["score"] == pytest.approx(1.0, abs=2e-3)
    for a, b in zip(fp32["results"], bf16["results"], strict=True):
        assert a["identity"] == b["identity"]
        assert a["score"] == pytest.approx(b["score"], abs=5e-3)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_auto_picks_bf16_only_where_it_is_native(
    make_service: Callable[..., ServiceHandle],
) -> None:
    with make_service(amp="auto").client() as client:
        card = client.get("/model").json()
    assert card["device"] == "cpu"
    assert card["bf16"] is has_fast_bf16(torch.device("cpu"))
