"""Turn received image bytes into validated network input, once, off the event loop.

Decoding and preprocessing are model.preprocessing's; this module adds what a
received file needs around them: a content hash, the file's name in every
error, and a thread pool so a burst of uploads decodes in parallel (Pillow
releases the GIL) while the event loop keeps serving. Byte limits are checked
before this, where the bytes are read (``app/api/uploads.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from PIL import Image

from app.errors import InvalidInput, LimitExceeded
from model.preprocessing import ImageDecodeError, InputSize, decode_image, preprocess

# Magic numbers of the allow-listed formats, used only to name the format of
# bytes that decode_image has already accepted.
_SIGNATURES = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"))


class UnusableImage(InvalidInput):
    """Empty, not decodable, or not an allowed format; the code comes from model.preprocessing."""


class ImageTooLarge(LimitExceeded):
    code = "too_many_pixels"


ImageError = UnusableImage | ImageTooLarge


@dataclass(frozen=True)
class Upload:
    """One received file: its client-side name, position in the request, and bytes."""

    filename: str
    index: int
    data: bytes


@dataclass(frozen=True)
class DecodedImage:
    filename: str
    index: int
    data: bytes
    sha256: str
    image_format: str
    width: int
    height: int
    tensor: torch.Tensor


def image_format_of(data: bytes) -> str:
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return "webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else "unknown"


def _describe(upload: Upload) -> str:
    return f"file #{upload.index + 1} ({upload.filename!r})"


def decode_one(upload: Upload, max_pixels: int, size: InputSize) -> DecodedImage:
    """Decode, validate and preprocess one upload; errors name the file."""
    return decode_with_picture(upload, max_pixels, size)[0]


def decode_with_picture(
    upload: Upload, max_pixels: int, size: InputSize
) -> tuple[DecodedImage, Image.Image]:
    """As ``decode_one``, keeping the upright RGB picture the tensor was made from.

    For callers that draw on the crop (``app/inference/explain.py``): decoding it a
    second time would cost as much again and could disagree with what was embedded.
    """
    try:
        image = decode_image(upload.data, max_pixels=max_pixels)
    except ImageDecodeError as error:
        kind = ImageTooLarge if error.code == ImageTooLarge.code else UnusableImage
        raise kind(
            f"{_describe(upload)}: {error}",
            {"filename": upload.filename, "index": upload.index},
            code=error.code,
        ) from error
    decoded = DecodedImage(
        filename=upload.filename,
        index=upload.index,
        data=upload.data,
        sha256=hashlib.sha256(upload.data).hexdigest(),
        image_format=image_format_of(upload.data),
        width=image.width,
        height=image.height,
        tensor=preprocess(image, size),
    )
    return decoded, image


class ImageDecoder:
    """A bounded pool of decoding threads shared by all requests."""

    def __init__(self, threads: int, max_pixels: int, size: InputSize) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")
        self.max_pixels = max_pixels
        self.size = size  # the served network's input size (its model card)

    async def decode_each(self, uploads: Sequence[Upload]) -> list[DecodedImage | ImageError]:
        """Decode every upload in parallel; a bad file's error takes its place."""
        loop = asyncio.get_running_loop()
        futures = [
            loop.run_in_executor(self._pool, decode_one, upload, self.max_pixels, self.size)
            for upload in uploads
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ImageError):
                raise result
        return [result for result in results if isinstance(result, DecodedImage | ImageError)]

    async def decode_all(self, uploads: Sequence[Upload]) -> list[DecodedImage]:
        """Decode every upload in parallel; the first bad file (in request order) is raised."""
        decoded = []
        for result in await self.decode_each(uploads):
            if isinstance(result, ImageError):
                raise result
            decoded.append(result)
        return decoded

    async def decode_picture(self, upload: Upload) -> tuple[DecodedImage, Image.Image]:
        """Decode one upload in the pool and keep its picture; a bad file raises its error."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, decode_with_picture, upload, self.max_pixels, self.size
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
