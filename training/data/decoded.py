"""Crops decoded once and kept in memory as uint8, augmented as tensors.

On a small CPU host the per-step cost of reading, decoding, resizing and augmenting
every JPEG through PIL, in worker processes that compete with the training step for
the same cores, was the slow part of a Market-1501 epoch (18-30 img/s against the
44 img/s the step itself reaches at 256x128). With this path, epochs run at the step's
own rate (135-153 img/s at 128x64; docs/accuracy.md). Market's training set is about 320 MB as uint8
at its native 128x64, so every crop is decoded and resized once, through the shared
preprocessing, and each batch is augmented with a few tensor operations on the
training thread: no worker processes, no repeated decoding.

The augmentations are the ones of `training.transforms` (flip, pad-and-crop, random
erasing filled with the ImageNet mean), applied to uint8 crops of the final size;
the evaluation path is exactly the shared preprocessing's resize and normalisation.
All randomness comes from torch's global generator, as in `training.transforms`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
from PIL import Image

from model.evaluation.layouts.records import ImageRecord
from model.preprocessing import InputSize, normalize_uint8, preprocess, resize
from training.data.dataset import ReIDImageDataset
from training.transforms import check_augmentation

CropTransform = Callable[[torch.Tensor], torch.Tensor]

# Where torchvision's RandomErasing draws its rectangle from (area share, aspect ratio).
_ERASE_AREA = (0.02, 0.33)
_ERASE_LOG_RATIO = (math.log(0.3), math.log(1 / 0.3))
_ERASE_TRIES = 10


class TrainAugmentation:
    """Flip, pad-and-crop, normalise, then erase a rectangle to 0 (the ImageNet mean).

    The same steps and parameters as `training.transforms.build_train_transform`, on
    a uint8 crop that is already the network's input size.
    """

    def __init__(
        self, *, flip_probability: float = 0.5, padding: int = 10, erasing_probability: float = 0.5
    ) -> None:
        check_augmentation(flip_probability, padding, erasing_probability)
        self.flip_probability = flip_probability
        self.padding = padding
        self.erasing_probability = erasing_probability

    def __call__(self, crop: torch.Tensor) -> torch.Tensor:
        if float(torch.rand(())) < self.flip_probability:
            crop = crop.flip(-1)
        crop = self._shift(crop)
        image = normalize_uint8(crop)
        if float(torch.rand(())) < self.erasing_probability:
            self._erase(image)
        return image

    def _shift(self, crop: torch.Tensor) -> torch.Tensor:
        """Pad with black on every side, then cut a window of the original size back out."""
        if self.padding == 0:
            return crop
        _, height, width = crop.shape
        padded = torch.nn.functional.pad(crop, (self.padding,) * 4, value=0)
        top, left = (int(v) for v in torch.randint(0, 2 * self.padding + 1, (2,)))
        return padded[:, top : top + height, left : left + width]

    @staticmethod
    def _erase(image: torch.Tensor) -> None:
        _, height, width = image.shape
        area = height * width
        for _ in range(_ERASE_TRIES):
            target = area * float(torch.empty(()).uniform_(*_ERASE_AREA))
            ratio = math.exp(float(torch.empty(()).uniform_(*_ERASE_LOG_RATIO)))
            h = round(math.sqrt(target * ratio))
            w = round(math.sqrt(target / ratio))
            if h < height and w < width:
                top = int(torch.randint(0, height - h + 1, ()))
                left = int(torch.randint(0, width - w + 1, ()))
                image[:, top : top + h, left : left + w] = 0
                return


class DecodedCropDataset(ReIDImageDataset):
    """A `ReIDImageDataset` whose crops are decoded and resized once, at construction.

    The base class already decodes every file once to drop unreadable ones; here that
    decode is kept (resized to ``size``, as uint8) instead of thrown away, so nothing is
    read from disk afterwards and a file that breaks later cannot affect the run.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        size: InputSize,
        crop_transform: CropTransform = normalize_uint8,
        *,
        relabel: bool = True,
    ) -> None:
        self.size = size
        self._crops: list[np.ndarray] = []
        super().__init__(records, partial(preprocess, size=size), relabel=relabel)
        self.crops = torch.from_numpy(np.stack(self._crops)).permute(0, 3, 1, 2).contiguous()
        del self._crops
        self.crop_transform = crop_transform

    def _admit(self, image: Image.Image) -> None:
        self._crops.append(np.asarray(resize(image, self.size), dtype=np.uint8))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        return self.crop_transform(self.crops[index]), self.labels[index], self.camids[index]
