"""Both training input paths keep one contract.

The PIL path (`build_train_transform`, crops read from disk per draw) and the
decode-once path (`TrainAugmentation` over uint8 crops kept in memory) must augment
alike and, without augmentation, give exactly the shared preprocessing's input.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from model.preprocessing import InputSize, normalize_uint8, preprocess, resize
from training.data.decoded import TrainAugmentation
from training.transforms import build_eval_transform, build_train_transform

SIZES = [InputSize(256, 128), InputSize(128, 64)]
Augment = Callable[[Image.Image], torch.Tensor]


def _pil_path(size: InputSize, **kwargs: Any) -> Augment:
    return build_train_transform(size, **kwargs)


def _decoded_path(size: InputSize, **kwargs: Any) -> Augment:
    augment = TrainAugmentation(**kwargs)

    def apply(image: Image.Image) -> torch.Tensor:
        crop = torch.from_numpy(np.array(resize(image, size))).permute(2, 0, 1)
        return augment(crop)

    return apply


PATHS = {"pil": _pil_path, "decoded": _decoded_path}


@pytest.fixture(params=list(PATHS))
def path(request: pytest.FixtureRequest) -> Callable[..., Augment]:
    return PATHS[request.param]


@pytest.fixture(params=SIZES, ids=lambda size: f"{size.height}x{size.width}")
def size(request: pytest.FixtureRequest) -> InputSize:
    return request.param


@pytest.fixture
def crop() -> Image.Image:
    """A 64×128 crop whose left half is red and right half blue, to see flips."""
    array = np.zeros((128, 64, 3), dtype=np.uint8)
    array[:, :32] = (220, 20, 20)
    array[:, 32:] = (20, 20, 220)
    return Image.fromarray(array)


def test_eval_transform_is_the_shared_preprocessing(crop: Image.Image, size: InputSize) -> None:
    assert torch.equal(build_eval_transform(size)(crop), preprocess(crop, size))


def test_decoded_crops_normalise_bit_identically(crop: Image.Image, size: InputSize) -> None:
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (97, 41, 3), np.uint8))
    for image in (crop, photo):
        stored = torch.from_numpy(np.array(resize(image, size))).permute(2, 0, 1)
        assert torch.equal(normalize_uint8(stored), preprocess(image, size))


def test_train_output_shape_and_seeded_determinism(
    path: Callable[..., Augment], crop: Image.Image, size: InputSize
) -> None:
    transform = path(size)
    torch.manual_seed(0)
    first = [transform(crop) for _ in range(8)]
    torch.manual_seed(0)
    second = [transform(crop) for _ in range(8)]
    for a, b in zip(first, second, strict=True):
        assert a.shape == (3, size.height, size.width)
        assert a.dtype == torch.float32
        assert torch.equal(a, b)
    assert any(not torch.equal(first[0], other) for other in first[1:])


def test_without_augmentation_it_equals_eval(
    path: Callable[..., Augment], crop: Image.Image, size: InputSize
) -> None:
    plain = path(size, flip_probability=0.0, padding=0, erasing_probability=0.0)
    assert torch.equal(plain(crop), preprocess(crop, size))


def test_flip_mirrors_the_crop(
    path: Callable[..., Augment], crop: Image.Image, size: InputSize
) -> None:
    flip = path(size, flip_probability=1.0, padding=0, erasing_probability=0.0)
    assert torch.equal(flip(crop), preprocess(crop, size).flip(-1))


def test_padding_shifts_within_bounds_and_erasing_fills_mean(
    path: Callable[..., Augment], crop: Image.Image, size: InputSize
) -> None:
    torch.manual_seed(1)
    shifted = path(size, flip_probability=0.0, erasing_probability=0.0)
    black = preprocess(Image.new("RGB", (1, 1)), size)[:, 0, 0]

    def black_border_columns(image: torch.Tensor) -> int:
        is_black = torch.isclose(image, black[:, None, None]).all(dim=0).all(dim=0)
        return int(is_black.sum())

    borders = [black_border_columns(shifted(crop)) for _ in range(20)]
    assert max(borders) <= 10  # never shifted by more than the padding
    assert max(borders) > 0  # but shifted at all

    erase = path(size, flip_probability=0.0, padding=0, erasing_probability=1.0)
    erased = [erase(crop) for _ in range(10)]
    assert all((image == 0).all(dim=0).sum() > 0 for image in erased)
    assert not (preprocess(crop, size) == 0).all(dim=0).any()


@pytest.mark.parametrize(
    "kwargs",
    [{"flip_probability": 1.5}, {"erasing_probability": -0.1}, {"padding": -1}],
)
def test_rejects_bad_settings(path: Callable[..., Augment], kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        path(InputSize(256, 128), **kwargs)
