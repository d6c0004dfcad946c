import io

import numpy as np
import pytest
import torch
from PIL import Image

from model.preprocessing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INPUT_HEIGHT,
    INPUT_WIDTH,
    ImageDecodeError,
    decode_image,
    preprocess,
    to_normalized_tensor,
)


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_allowed_formats_decode_to_rgb(fmt: str) -> None:
    data = _encode(Image.new("RGB", (40, 90), (200, 10, 10)), fmt)
    image = decode_image(data)
    assert image.mode == "RGB"
    assert image.size == (40, 90)


def test_preprocess_shape_and_normalisation() -> None:
    tensor = preprocess(Image.new("RGB", (64, 200), (124, 116, 104)))
    assert tensor.shape == (3, INPUT_HEIGHT, INPUT_WIDTH)
    assert torch.allclose(tensor, torch.zeros_like(tensor), atol=0.02)


def test_normalisation_is_imagenet_per_channel_in_chw_order() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (INPUT_HEIGHT, INPUT_WIDTH, 3))
    tensor = to_normalized_tensor(Image.fromarray(pixels.astype(np.uint8)))
    expected = (
        torch.from_numpy(pixels).permute(2, 0, 1).double() / 255.0
        - torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(3, 1, 1)
    ) / torch.tensor(IMAGENET_STD, dtype=torch.float64).view(3, 1, 1)
    assert tensor.dtype == torch.float32 and tensor.is_contiguous()
    torch.testing.assert_close(tensor.double(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"this is not an image at all", "invalid_image"),
        (_encode(Image.new("RGB", (8, 8)), "GIF"), "unsupported_format"),
        (_encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")[:200], "invalid_image"),
    ],
)
def test_bad_bytes_raise_precise_errors(data: bytes, code: str) -> None:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data)
    assert info.value.code == code


def test_pixel_limit_is_checked_before_decoding() -> None:
    data = _encode(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data, max_pixels=1_000_000)
    assert info.value.code == "too_many_pixels"
