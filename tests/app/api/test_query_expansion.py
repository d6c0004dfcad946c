"""POST /query with ``expansion``: the results of the α-expanded query, the plain decision."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from service_kit import ServiceHandle, files, person_jpeg

from app.gallery.expansion import ALPHA
from model.preprocessing import decode_image, preprocess


def _embed(network: torch.nn.Module, crops: list[bytes]) -> np.ndarray:
    size = network.config.input_size
    batch = torch.stack([preprocess(decode_image(crop), size) for crop in crops])
    with torch.no_grad():
        return network.embed(batch).numpy()


@pytest.mark.parametrize("expansion", [1, 3])
def test_expanded_results_score_against_the_expanded_query(
    make_service: Callable[..., ServiceHandle], expansion: int
) -> None:
    service = make_service(amp="off")
    enrolled: dict[int, bytes] = {}  # entry id -> crop
    owner: dict[int, str] = {}  # entry id -> identity
    with service.client() as client:
        for pid in range(1, 6):
            crops = [person_jpeg(pid, 1, shot) for shot in (0, 1)]
            body = client.post(
                "/gallery", data={"identity": f"p{pid}"}, files=files(f"p{pid}", *crops)
            ).json()
            entry_ids = [entry["id"] for entry in body["entries"]]
            enrolled.update(zip(entry_ids, crops, strict=True))
            owner.update(dict.fromkeys(entry_ids, f"p{pid}"))
        probe = person_jpeg(2, 2, 7)
        plain = client.post("/query", files={"image": ("q.jpg", probe, "image/jpeg")}).json()
        expanded = client.post(
            "/query",
            data={"expansion": str(expansion)},
            files={"image": ("q.jpg", probe, "image/jpeg")},
        ).json()
    network = service.models.for_settings(service.settings).network
    ids = list(enrolled)
    vectors = dict(zip(ids, _embed(network, [enrolled[i] for i in ids]), strict=True))
    query = _embed(network, [probe])[0]
    for result in plain["results"][:expansion]:
        query = query + result["score"] ** ALPHA * vectors[result["entry_id"]]
    query = query / np.linalg.norm(query)
    best: dict[str, float] = {}
    for entry_id in ids:
        score = float(vectors[entry_id] @ query)
        best[owner[entry_id]] = max(score, best.get(owner[entry_id], -1.0))
    expected = sorted(best.items(), key=lambda item: -item[1])
    got = [(r["identity"], r["score"]) for r in expanded["results"]]
    assert [identity for identity, _ in got] == [identity for identity, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-4)
    assert got != [(r["identity"], r["score"]) for r in plain["results"]]  # it changed
    assert expanded["decision"] == plain["decision"]  # decided on the plain query


def test_expansion_on_an_empty_gallery_is_the_plain_answer(
    make_service: Callable[..., ServiceHandle],
) -> None:
    with make_service().client() as client:
        answer = client.post(
            "/query",
            data={"expansion": "3"},
            files={"image": ("q.jpg", person_jpeg(1), "image/jpeg")},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == []
