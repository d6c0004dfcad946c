"""Read a request's files into memory, refusing too many or too large before any decoding."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import UploadFile

from app.api.errors import ApiError
from app.inference.decoding import Upload


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
