"""POST /explain: the network's own spatial attention for one crop, and its overlay.

The shared test checkpoint's attention is freshly initialised (every mask value is
about 0.5), which would let a constant answer pass; these tests serve a checkpoint
whose attention weights are drawn so its masks span [0, 1] and differ per crop.
Explanation does not touch the database, so one SQLite service serves them all.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from service_kit import (
    LoadedModels,
    ServiceHandle,
    assert_error,
    encode,
    make_settings,
    person_jpeg,
)

from app.api.auth import hash_key
from model.checkpoint import load_checkpoint, save_checkpoint, untrained_model
from model.config import ModelConfig
from model.preprocessing import decode_image, preprocess

MAX_FILE_BYTES = 1_000_000
READ_KEY = "reid_explain_read_key_0123456789abcdef"
DATA_URL = "data:image/png;base64,"


def write_checkpoint(directory: Path, attention: str) -> Path:
    """A small resnet18 checkpoint; its attention weights drawn wide so masks have shape."""
    network, _ = untrained_model(ModelConfig(arch="resnet18", num_classes=16, attention=attention))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        if network.attention is not None and network.attention.spatial is not None:
            score = network.attention.spatial.score
            score.weight.copy_(torch.randn(score.weight.shape, generator=generator) * 0.2)
            score.bias.fill_(-1.2)
        if network.attention is not None and network.attention.channel is not None:
            fc2 = network.attention.channel.fc2
            fc2.bias.copy_(torch.randn(fc2.bias.shape, generator=generator) * 2.0)
    save_checkpoint(network, directory, training_data={"kind": "test"}, metrics={})
    return directory


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    root = tmp_path_factory.mktemp("explain-checkpoints")
    made: dict[str, Path] = {}

    def checkpoint(attention: str) -> Path:
        if attention not in made:
            made[attention] = write_checkpoint(root / attention, attention)
        return made[attention]

    return checkpoint


@pytest.fixture(scope="module")
def start(
    checkpoints: Callable[[str], Path],
    loaded_models: LoadedModels,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., ServiceHandle]:
    def handle(attention: str = "both", **overrides: Any) -> ServiceHandle:
        directory = tmp_path_factory.mktemp(f"explain-{attention}")
        settings = make_settings(
            directory / "data",
            f"sqlite:///{directory / 'reid.db'}",
            checkpoints(attention),
            amp="off",  # fp32, so the network called directly gives the very same numbers
            max_file_bytes=MAX_FILE_BYTES,
            **overrides,
        )
        return ServiceHandle(settings, loaded_models)

    return handle


@pytest.fixture(scope="module")
def client(start: Callable[..., ServiceHandle]) -> Iterator[TestClient]:
    with start().client() as client:
        yield client


def explain(client: TestClient, data: bytes, name: str = "crop.jpg", **fields: str) -> Any:
    return client.post("/explain", files={"image": (name, data, "image/jpeg")}, data=fields)


def network_output(checkpoint: Path, data: bytes) -> Any:
    """What the checkpoint's network, loaded afresh, says about these bytes."""
    network, card = load_checkpoint(checkpoint)
    tensor = preprocess(decode_image(data), card.config.input_size)
    with torch.inference_mode():
        return network(tensor.unsqueeze(0))


def overlay_of(body: dict[str, Any]) -> Image.Image:
    assert body["overlay_png"].startswith(DATA_URL)
    png = base64.b64decode(body["overlay_png"][len(DATA_URL) :], validate=True)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image


def test_masks_are_the_networks_own(client: TestClient, checkpoints: Callable[[str], Path]) -> None:
    masks = []
    for pid in (1, 2):
        data = person_jpeg(pid, 1, 0)
        response = explain(client, data)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {
            "model_version",
            "crop",
            "spatial_attention",
            "channel_attention",
            "overlay_png",
        }
        assert body["model_version"] == client.get("/model").json()["version"]
        width, height = Image.open(io.BytesIO(data)).size
        assert body["crop"] == {"width": width, "height": height}

        expected = network_output(checkpoints("both"), data)
        spatial = expected.spatial_attention[0, 0].numpy()
        assert spatial.shape == (16, 8)  # 256x128 input, stride 16 at layer3
        got = body["spatial_attention"]
        assert (got["height"], got["width"]) == spatial.shape
        values = np.array(got["values"])
        assert values.shape == spatial.shape
        np.testing.assert_allclose(values, spatial, atol=5.1e-5)  # rounded to 4 decimals
        assert np.array_equal(values, np.round(values, 4))
        assert values.std() > 0.1, "the test network's mask should have shape"
        channel = expected.channel_attention[0, :, 0, 0].numpy()
        assert len(body["channel_attention"]) == 256  # resnet18 layer3 channels
        np.testing.assert_allclose(body["channel_attention"], channel, atol=5.1e-5)
        assert overlay_of(body).size == (width, height)  # small crops keep their size
        masks.append(values)
    assert np.abs(masks[0] - masks[1]).max() > 0.05, "masks should follow the crop"


def test_png_format_is_the_overlay_alone(client: TestClient) -> None:
    data = person_jpeg(3, 2, 1)
    as_json = explain(client, data, format="json").json()
    response = explain(client, data, format="png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == base64.b64decode(as_json["overlay_png"][len(DATA_URL) :])
    assert Image.open(io.BytesIO(response.content)).size == (
        as_json["crop"]["width"],
        as_json["crop"]["height"],
    )


@pytest.mark.parametrize(
    ("size", "shown"),
    [((1000, 400), (512, 205)), ((300, 900), (171, 512)), ((512, 200), (512, 200))],
)
def test_the_overlay_is_scaled_down_to_512_never_up(
    client: TestClient, size: tuple[int, int], shown: tuple[int, int]
) -> None:
    ramp = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :, None]
    picture = Image.fromarray(np.broadcast_to(ramp, (size[1], size[0], 3)).copy())
    response = explain(client, encode(picture, "PNG"), name="wide.png")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["crop"] == {"width": size[0], "height": size[1]}
    assert overlay_of(body).size == shown
    # The mask stays at the map's own resolution whatever the crop's size.
    assert (body["spatial_attention"]["height"], body["spatial_attention"]["width"]) == (16, 8)


def test_bad_requests_get_precise_errors(client: TestClient) -> None:
    jpeg = person_jpeg(1, 1, 0)
    assert_error(explain(client, b"not an image at all"), 422, "invalid_image")
    assert_error(explain(client, jpeg[: len(jpeg) // 2]), 422, "invalid_image")
    assert_error(explain(client, b""), 422, "empty_file")
    gif = encode(Image.new("RGB", (8, 16)), "GIF")
    assert_error(explain(client, gif), 422, "unsupported_format")
    too_large = explain(client, b"\0" * (MAX_FILE_BYTES + 1))
    assert assert_error(too_large, 413, "file_too_large")["details"]["limit"] == MAX_FILE_BYTES
    missing = client.post("/explain", data={"format": "json"})
    assert assert_error(missing, 422, "validation_error")["details"][0]["loc"] == [
        "body",
        "image",
    ]
    for bad in ("jpeg", "PNG", "json "):
        error = assert_error(explain(client, jpeg, format=bad), 422, "validation_error")
        assert error["details"][0]["loc"] == ["body", "format"]
        assert "'json' or 'png'" in error["message"]


@pytest.mark.parametrize("attention", ["none", "channel"])
def test_a_model_without_spatial_attention_answers_409(
    start: Callable[..., ServiceHandle], attention: str
) -> None:
    with start(attention).client() as client:
        error = assert_error(explain(client, person_jpeg(1, 1, 0)), 409, "attention_unavailable")
        assert "no spatial attention" in error["message"]
        assert error["details"] == {"attention": attention}
        assert explain(client, person_jpeg(1, 1, 0), format="png").status_code == 409


def test_a_spatial_only_model_has_no_channel_weights(
    start: Callable[..., ServiceHandle], checkpoints: Callable[[str], Path]
) -> None:
    data = person_jpeg(4, 1, 0)
    with start("spatial").client() as client:
        body = explain(client, data).json()
    assert body["channel_attention"] is None
    expected = network_output(checkpoints("spatial"), data).spatial_attention[0, 0].numpy()
    np.testing.assert_allclose(body["spatial_attention"]["values"], expected, atol=5.1e-5)


def test_explanations_beside_live_queries_agree_with_sequential_ones(client: TestClient) -> None:
    """The explain forward runs in its own thread next to the batcher's; neither disturbs
    the other's numbers."""
    crops = [person_jpeg(pid, 1, 3) for pid in (1, 2, 3, 4)]
    client.post("/gallery", data={"identity": "someone"}, files={"images": ("e.jpg", crops[0])})

    def query(data: bytes) -> list[float]:
        response = client.post("/query", files={"image": ("q.jpg", data, "image/jpeg")})
        assert response.status_code == 200, response.text
        return [result["score"] for result in response.json()["results"]]

    def masks(data: bytes) -> list[list[float]]:
        response = explain(client, data)
        assert response.status_code == 200, response.text
        return response.json()["spatial_attention"]["values"]

    alone = [(masks(data), query(data)) for data in crops]
    with ThreadPoolExecutor(max_workers=8) as pool:
        explained = [pool.submit(masks, data) for data in crops * 2]
        queried = [pool.submit(query, data) for data in crops * 2]
        together = [(e.result(), q.result()) for e, q in zip(explained, queried, strict=True)]
    for (mask, scores), (mask_alone, scores_alone) in zip(together, alone * 2, strict=True):
        assert mask == mask_alone
        np.testing.assert_allclose(scores, scores_alone, atol=1e-5)


KEYS = [{"name": "viewer", "role": "read", "sha256": hash_key(READ_KEY)}]


def test_keys_are_checked_like_any_read_route(start: Callable[..., ServiceHandle]) -> None:
    data = person_jpeg(1, 1, 0)
    with start(api_keys=KEYS).client(client=("198.51.100.7", 4321)) as client:
        assert_error(explain(client, data), 401, "unauthenticated")
        wrong = client.post(
            "/explain",
            files={"image": ("q.jpg", data, "image/jpeg")},
            headers={"X-API-Key": "reid_not_a_key"},
        )
        assert_error(wrong, 401, "invalid_api_key")
        allowed = client.post(
            "/explain",
            files={"image": ("q.jpg", data, "image/jpeg")},
            headers={"Authorization": f"Bearer {READ_KEY}"},
        )
        assert allowed.status_code == 200, allowed.text
    with start().client(client=("198.51.100.7", 4321)) as remote:  # no keys: loopback only
        assert_error(explain(remote, data), 403, "remote_access_disabled")
