import numpy as np
import pytest
import torch
from PIL import Image

from model.preprocessing import INPUT_HEIGHT, INPUT_WIDTH, preprocess
from training.transforms import build_eval_transform, build_train_transform


@pytest.fixture
def crop() -> Image.Image:
    """A 64×128 crop whose left half is red and right half blue, to see flips."""
    array = np.zeros((128, 64, 3), dtype=np.uint8)
    array[:, :32] = (220, 20, 20)
    array[:, 32:] = (20, 20, 220)
    return Image.fromarray(array)


def test_eval_transform_is_the_shared_preprocessing(crop: Image.Image) -> None:
    assert torch.equal(build_eval_transform()(crop), preprocess(crop))


def test_train_output_shape_and_seeded_determinism(crop: Image.Image) -> None:
    transform = build_train_transform()
    torch.manual_seed(0)
    first = [transform(crop) for _ in range(8)]
    torch.manual_seed(0)
    second = [transform(crop) for _ in range(8)]
    for a, b in zip(first, second, strict=True):
        assert a.shape == (3, INPUT_HEIGHT, INPUT_WIDTH)
        assert a.dtype == torch.float32
        assert torch.equal(a, b)
    assert any(not torch.equal(first[0], other) for other in first[1:])


def test_without_augmentation_it_equals_eval(crop: Image.Image) -> None:
    plain = build_train_transform(flip_probability=0.0, padding=0, erasing_probability=0.0)
    assert torch.equal(plain(crop), preprocess(crop))


def test_flip_mirrors_the_crop(crop: Image.Image) -> None:
    flip = build_train_transform(flip_probability=1.0, padding=0, erasing_probability=0.0)
    assert torch.equal(flip(crop), preprocess(crop).flip(-1))


def test_padding_shifts_within_bounds_and_erasing_fills_mean(crop: Image.Image) -> None:
    torch.manual_seed(1)
    shifted = build_train_transform(flip_probability=0.0, erasing_probability=0.0)
    black = preprocess(Image.new("RGB", (1, 1)))[:, 0, 0]

    def black_border_columns(image: torch.Tensor) -> int:
        is_black = torch.isclose(image, black[:, None, None]).all(dim=0).all(dim=0)
        return int(is_black.sum())

    borders = [black_border_columns(shifted(crop)) for _ in range(20)]
    assert max(borders) <= 10  # never shifted by more than the padding
    assert max(borders) > 0  # but shifted at all

    erase = build_train_transform(flip_probability=0.0, padding=0, erasing_probability=1.0)
    erased = erase(crop)
    assert (erased == 0).all(dim=0).sum() > 0
    assert not (preprocess(crop) == 0).all(dim=0).any()


@pytest.mark.parametrize(
    "kwargs",
    [{"flip_probability": 1.5}, {"erasing_probability": -0.1}, {"padding": -1}],
)
def test_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        build_train_transform(**kwargs)
