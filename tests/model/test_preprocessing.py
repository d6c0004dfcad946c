import io

import numpy as np
import pytest
import torch
from PIL import Image

from model.preprocessing import (
    DEFAULT_INPUT_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageDecodeError,
    InputSize,
    decode_image,
    preprocess,
    to_normalized_tensor,
)


def _encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_allowed_formats_decode_to_rgb(fmt: str) -> None:
    data = _encode(Image.new("RGB", (40, 90), (200, 10, 10)), fmt)
    image = decode_image(data)
    assert image.mode == "RGB"
    assert image.size == (40, 90)


@pytest.mark.parametrize("size", [DEFAULT_INPUT_SIZE, InputSize(128, 64), InputSize(64, 32)])
def test_preprocess_shape_and_normalisation(size: InputSize) -> None:
    tensor = preprocess(Image.new("RGB", (64, 200), (124, 116, 104)), size)
    assert tensor.shape == (3, size.height, size.width)
    assert torch.allclose(tensor, torch.zeros_like(tensor), atol=0.02)


def test_normalisation_is_imagenet_per_channel_in_chw_order() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (*DEFAULT_INPUT_SIZE, 3))
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


def _grey_ramp(high: int, dtype: type) -> np.ndarray:
    return np.linspace(0, high, 64 * 32).reshape(64, 32).astype(dtype)


# Every mode the allowed formats can hand over, with the 8-bit grey it should become.
MODE_CASES = {
    "L": (Image.fromarray(_grey_ramp(255, np.uint8)), _grey_ramp(255, np.uint8)),
    "I;16": (Image.fromarray(_grey_ramp(65535, np.uint16)), _grey_ramp(255, np.uint8)),
    "1": (Image.fromarray(_grey_ramp(255, np.uint8)).convert("1"), None),
    "P": (Image.fromarray(_grey_ramp(255, np.uint8)).convert("P"), None),
    "LA": (Image.fromarray(_grey_ramp(255, np.uint8)).convert("LA"), _grey_ramp(255, np.uint8)),
    "RGBA": (Image.new("RGBA", (32, 64), (10, 200, 30, 255)), None),
    "CMYK": (Image.new("CMYK", (32, 64), (0, 255, 255, 0)), None),
}


@pytest.mark.parametrize("mode", list(MODE_CASES))
def test_every_mode_decodes_to_the_rgb_a_person_sees(mode: str) -> None:
    image, expected_grey = MODE_CASES[mode]
    image_format = "JPEG" if mode == "CMYK" else "PNG"
    decoded = decode_image(_encode(image, image_format))
    assert decoded.mode == "RGB" and decoded.size == image.size
    pixels = np.asarray(decoded).astype(int)
    if expected_grey is not None:  # grey stays grey, level for level (16-bit is scaled)
        assert np.abs(pixels - expected_grey[..., None].astype(int)).max() <= 1
    assert pixels.std() > 0 or mode in {"RGBA", "CMYK"}  # never one flat colour
    if mode == "RGBA":
        assert pixels[0, 0].tolist() == [10, 200, 30]
    if mode == "CMYK":
        assert pixels[0, 0, 0] > 200 and pixels[0, 0, 1:].max() < 60  # red


def test_two_different_16_bit_crops_do_not_look_alike() -> None:
    dark = decode_image(_encode(Image.fromarray(_grey_ramp(20000, np.uint16))))
    bright = decode_image(_encode(Image.fromarray(_grey_ramp(65535, np.uint16))))
    assert np.asarray(dark).mean() < 0.5 * np.asarray(bright).mean()


def test_transparent_pixels_show_the_normalisation_zero() -> None:
    for image in (
        Image.new("RGBA", (8, 16), (255, 0, 0, 0)),
        Image.new("LA", (8, 16), (255, 0)),
    ):
        tensor = preprocess(decode_image(_encode(image)), DEFAULT_INPUT_SIZE)
        assert tensor.abs().max() < 0.03  # the ImageNet mean, not red or white


def test_exif_orientation_is_applied_everywhere() -> None:
    upright = Image.new("RGB", (20, 40), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: a viewer turns it 90 degrees
    decoded = decode_image(_encode(upright, "JPEG", exif=exif.tobytes()))
    assert decoded.size == (40, 20)
