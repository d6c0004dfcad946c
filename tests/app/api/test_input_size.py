"""The service resizes every crop to its checkpoint's own input size."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image
from service_kit import ServiceHandle, files, person_jpeg

from model.checkpoint import save_checkpoint, untrained_model
from model.config import ModelConfig
from model.preprocessing import DEFAULT_INPUT_SIZE, InputSize, decode_image, preprocess

SMALL = InputSize(128, 64)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = ModelConfig(
        arch="resnet18", num_classes=4, input_height=SMALL.height, input_width=SMALL.width
    )
    network, _ = untrained_model(config)
    directory = tmp_path_factory.mktemp("small") / "best"
    save_checkpoint(network, directory, training_data={}, metrics={})
    return directory


def _cosine(network: torch.nn.Module, first: bytes, second: bytes, size: InputSize) -> float:
    batch = torch.stack([preprocess(decode_image(crop), size) for crop in (first, second)])
    with torch.no_grad():
        embeddings = network.embed(batch)
    return float(embeddings[0] @ embeddings[1])


def test_a_128x64_checkpoint_is_served_at_128x64(
    make_service: Callable[..., ServiceHandle], small_checkpoint: Path
) -> None:
    service = make_service(model_path=small_checkpoint, amp="off")
    enrolled, probe = person_jpeg(1, 1, 0), person_jpeg(2, 2, 1)
    # A crop of another shape: the service must resize it, not refuse or pad it.
    wide = io.BytesIO()
    Image.open(io.BytesIO(probe)).resize((90, 150)).save(wide, format="PNG")
    with service.client() as client:
        assert client.get("/model").json()["input_size"] == [3, 128, 64]
        response = client.post("/gallery", data={"identity": "a"}, files=files("a", enrolled))
        assert response.status_code == 201, response.text
        network = service.models.for_settings(service.settings).network
        for crop in (probe, wide.getvalue()):
            answer = client.post("/query", files={"image": ("q.png", crop, "image/png")})
            assert answer.status_code == 200, answer.text
            score = answer.json()["results"][0]["score"]
            expected = _cosine(network, enrolled, crop, SMALL)
            other_size = _cosine(network, enrolled, crop, DEFAULT_INPUT_SIZE)
            assert score == pytest.approx(expected, abs=1e-4)
            assert abs(other_size - expected) > 1e-3  # the check can tell the sizes apart
