"""Embed the images of a job's archive in chunks, through the live batcher, with progress.

Jobs embed through the same dynamic batcher and preprocessing as live traffic,
so their metrics describe exactly what the service would answer. Undecodable
files are skipped and listed, not fatal: a real dataset dump has a few.
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import torch

from app.inference.batcher import DynamicBatcher
from app.inference.decoding import ImageDecoder, ImageError, Upload
from app.jobs.zipcheck import read_member

_CHUNK_BATCHES = 4

Progress = Callable[[float], Awaitable[None]]  # the fraction of the job's images embedded


@dataclass
class EmbeddedMembers:
    features: np.ndarray
    kept: list[int]  # positions (in the names given) of the members that decoded
    skipped: list[dict[str, str]]


class MemberEmbedder:
    def __init__(
        self, *, batcher: DynamicBatcher, decoder: ImageDecoder, dim: int, max_member_bytes: int
    ) -> None:
        self._batcher = batcher
        self._decoder = decoder
        self._dim = dim
        self._max_member_bytes = max_member_bytes

    async def embed(
        self,
        archive: zipfile.ZipFile,
        names: list[str],
        progress: Progress,
        *,
        done_before: int = 0,
        total: int | None = None,
    ) -> EmbeddedMembers:
        """Embed ``names`` in order, reporting progress after each chunk.

        A job that embeds several lists passes how many images came before this
        one (``done_before``) and in all (``total``), so progress never goes back.
        """
        total = len(names) if total is None else total
        chunk = self._batcher.max_batch * _CHUNK_BATCHES
        features: list[np.ndarray] = []
        kept: list[int] = []
        skipped: list[dict[str, str]] = []
        for start in range(0, len(names), chunk):
            uploads = []
            for offset, name in enumerate(names[start : start + chunk]):
                data = await asyncio.to_thread(read_member, archive, name, self._max_member_bytes)
                uploads.append(Upload(filename=name, index=start + offset, data=data))
            decoded = []
            for upload, result in zip(
                uploads, await self._decoder.decode_each(uploads), strict=True
            ):
                if isinstance(result, ImageError):
                    skipped.append({"file": upload.filename, "code": result.code})
                else:
                    decoded.append(result)
            if decoded:
                batch = torch.stack([image.tensor for image in decoded])
                features.append(await self._batcher.embed(batch))
                kept.extend(image.index for image in decoded)
            done = done_before + min(start + chunk, len(names))
            await progress(done / max(total, 1))
        stacked = np.concatenate(features) if features else np.empty((0, self._dim), np.float32)
        return EmbeddedMembers(stacked, kept, skipped)
