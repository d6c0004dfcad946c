"""Turn uploaded bytes into validated network input, once, off the event loop.

Decoding and preprocessing are model.preprocessing's; this module adds what an
upload needs around them: size limits before any decoding, a content hash, the
file's name in every error, and a thread pool so a burst of uploads decodes in
parallel (Pillow releases the GIL) while the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from fastapi import UploadFile

from app.errors import ApiError
from model.preprocessing import ImageDecodeError, decode_image, preprocess

# Magic numbers of the allow-listed formats, used only to name the format of
# bytes that decode_image has already accepted.
_SIGNATURES = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"))


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


async def read_uploads(
    files: Sequence[UploadFile], *, max_files: int, max_file_bytes: int, field: str
) -> list[Upload]:
    """Read the request's files, enforcing count and per-file byte limits by name."""
    if len(files) > max_files:
        raise ApiError(
            413,
            "too_many_files",
            f"{len(files)} files sent in '{field}'; at most {max_files} per request "
            "(REID_MAX_FILES_PER_REQUEST)",
            {"field": field, "count": len(files), "limit": max_files},
        )
    uploads = []
    for index, file in enumerate(files):
        name = file.filename or f"{field}[{index}]"
        size = file.size
        if size is not None and size > max_file_bytes:
            raise _too_large(name, index, size, max_file_bytes)
        data = await file.read(max_file_bytes + 1)
        if len(data) > max_file_bytes:
            raise _too_large(name, index, len(data), max_file_bytes)
        uploads.append(Upload(filename=name, index=index, data=data))
    return uploads


def _too_large(name: str, index: int, size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "file_too_large",
        f"file #{index + 1} ({name!r}) is {size} bytes; the limit is {limit} (REID_MAX_FILE_BYTES)",
        {"filename": name, "index": index, "bytes": size, "limit": limit},
    )


def decode_one(upload: Upload, max_pixels: int) -> DecodedImage:
    """Decode, validate and preprocess one upload; errors name the file."""
    try:
        image = decode_image(upload.data, max_pixels=max_pixels)
    except ImageDecodeError as error:
        status = 413 if error.code == "too_many_pixels" else 422
        raise ApiError(
            status,
            error.code,
            f"{_describe(upload)}: {error}",
            {"filename": upload.filename, "index": upload.index},
        ) from error
    return DecodedImage(
        filename=upload.filename,
        index=upload.index,
        data=upload.data,
        sha256=hashlib.sha256(upload.data).hexdigest(),
        image_format=image_format_of(upload.data),
        width=image.width,
        height=image.height,
        tensor=preprocess(image),
    )


class ImageDecoder:
    """A bounded pool of decoding threads shared by all requests."""

    def __init__(self, threads: int, max_pixels: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")
        self.max_pixels = max_pixels

    async def decode_each(self, uploads: Sequence[Upload]) -> list[DecodedImage | ApiError]:
        """Decode every upload in parallel; a bad file's error takes its place."""
        loop = asyncio.get_running_loop()
        futures = [
            loop.run_in_executor(self._pool, decode_one, upload, self.max_pixels)
            for upload in uploads
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ApiError):
                raise result
        return [result for result in results if isinstance(result, DecodedImage | ApiError)]

    async def decode_all(self, uploads: Sequence[Upload]) -> list[DecodedImage]:
        """Decode every upload in parallel; the first bad file (in request order) is raised."""
        decoded = []
        for result in await self.decode_each(uploads):
            if isinstance(result, ApiError):
                raise result
            decoded.append(result)
        return decoded

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
