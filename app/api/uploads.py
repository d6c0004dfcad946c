"""Read a request's files into memory, refusing one that is too large before any decoding.

How many files a request may carry is enforced earlier, as the body streams in
(app.api.form_guard), against the route's setting.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import UploadFile

from app.api.errors import ApiError
from app.inference.decoding import Upload


async def read_uploads(
    files: Sequence[UploadFile], *, max_file_bytes: int, field: str
) -> list[Upload]:
    """Read the request's files, enforcing the per-file byte limit by name."""
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
        {
            "filename": name,
            "index": index,
            "bytes": size,
            "limit": limit,
            "setting": "REID_MAX_FILE_BYTES",
        },
    )
