"""Training and evaluation transforms, built on the shared model preprocessing.

Both start from ``model.preprocessing`` so that the geometry and normalisation a
network is trained with are exactly those it is evaluated and served with; the
training transform only adds augmentation around them (the "bag of tricks"
recipe: flip, pad-and-crop, random erasing).

All randomness comes from torch's global generator: ``torch.manual_seed`` makes
a run reproducible, and a DataLoader seeds each worker from its own generator.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from PIL import Image

import model  # noqa: F401  (installs the torchvision shim before torchvision is imported)
from model.preprocessing import InputSize, preprocess, resize, to_normalized_tensor

# isort: split
from torchvision import transforms

Transform = Callable[[Image.Image], torch.Tensor]


def build_train_transform(
    size: InputSize,
    *,
    flip_probability: float = 0.5,
    padding: int = 10,
    erasing_probability: float = 0.5,
) -> Transform:
    """Resize → random horizontal flip → pad and random-crop back → normalise → random erasing.

    Padding then cropping shifts the person by up to ``padding`` pixels, imitating
    detector jitter; erasing fills a random rectangle with 0, which after
    normalisation is the ImageNet mean colour, imitating occlusion.
    """
    check_augmentation(flip_probability, padding, erasing_probability)
    return transforms.Compose(
        [
            partial(resize, size=size),
            transforms.RandomHorizontalFlip(flip_probability),
            transforms.Pad(padding, fill=0),
            transforms.RandomCrop((size.height, size.width)),
            to_normalized_tensor,
            transforms.RandomErasing(p=erasing_probability, value=0),
        ]
    )


def check_augmentation(flip_probability: float, padding: int, erasing_probability: float) -> None:
    """The one check of the augmentation settings, for both training input paths."""
    for name, value in (
        ("flip_probability", flip_probability),
        ("erasing_probability", erasing_probability),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if padding < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")


def build_eval_transform(size: InputSize) -> Transform:
    """The evaluation transform is the shared preprocessing, unchanged."""
    return partial(preprocess, size=size)
