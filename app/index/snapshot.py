"""Index snapshots: a fast start-up that can never serve a stale or damaged index.

File layout (one file, so it is replaced atomically as a whole)::

    <FAISS index bytes> <header JSON> <header length: u64 LE> <header SHA-256> b"REIDSNP3"

The header is the watermark: what the index was taken from (model version,
dimension, index structure, and the change-log position ``seq`` whose changes it
reflects, with its live count) plus the tombstones and the SHA-256 and length of
the index bytes. The trailer holds the header's own SHA-256, so a flipped byte in
the watermark or the tombstones (which decide what the index may serve) is caught
as surely as one in the index. Start-up uses a snapshot only when the watermark
fits the loaded model and the change log still reaches back to its ``seq`` (the
log after it is then replayed); anything else (older format, another model, a
pruned log, bytes overwritten) means a rebuild from the database.

Each replica writes its own file. Writing goes to a uniquely named temporary
file in the same directory, is fsynced, then ``os.replace``d over the old
snapshot and the directory fsynced, so a crash at any point leaves either the
old snapshot or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import faiss

from app.index.backends import gpu_available
from app.index.spec import IndexSpec
from app.index.vector_index import VectorIndex

MAGIC = b"REIDSNP3"
# Format 1 had no header checksum, format 2 no change-log position: both are rebuilt.
_OLDER_MAGICS = {b"REIDSNP1": 1, b"REIDSNP2": 2}
FORMAT_VERSION = 3
_TRAILER = struct.Struct("<Q32s8s")
_MAX_HEADER_BYTES = 64 * 1024 * 1024


class SnapshotError(ValueError):
    """The snapshot is unusable; the message says why (logged, then the index is rebuilt)."""


@dataclass(frozen=True)
class Watermark:
    """The gallery state an index reflects: the change log applied through ``seq``."""

    model_version: str
    dim: int
    structure: dict[str, Any]
    seq: int
    count: int


@dataclass(frozen=True)
class SnapshotHeader:
    watermark: Watermark
    effective_type: str
    tombstones: list[int]
    payload_bytes: int
    payload_sha256: str
    format_version: int = FORMAT_VERSION


def write_snapshot(path: Path, index: VectorIndex, model_version: str, seq: int) -> Watermark:
    """Atomically replace ``path`` with a snapshot of ``index``, which reflects the change
    log through ``seq``; returns its watermark."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as handle:
            digest = hashlib.sha256()
            written = 0

            def sink(chunk: bytes) -> int:
                nonlocal written
                handle.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                return len(chunk)

            with index.locked():
                watermark = Watermark(
                    model_version=model_version,
                    dim=index.dim,
                    structure=index.spec.structure(),
                    seq=seq,
                    count=index.count,
                )
                tombstones = index.tombstones()
                writer = faiss.PyCallbackIOWriter(sink)
                faiss.write_index(index.cpu_index(), writer)
                del writer  # flushes its buffer into sink
            header = SnapshotHeader(
                watermark=watermark,
                effective_type=index.effective_type,
                tombstones=tombstones,
                payload_bytes=written,
                payload_sha256=digest.hexdigest(),
            )
            encoded = json.dumps(asdict(header), separators=(",", ":")).encode()
            handle.write(encoded)
            handle.write(_TRAILER.pack(len(encoded), hashlib.sha256(encoded).digest(), MAGIC))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    finally:
        temporary.unlink(missing_ok=True)
    return watermark


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_header(path: Path) -> SnapshotHeader:
    """Read and validate the header only (cheap: no index bytes are read)."""
    try:
        with open(path, "rb") as handle:
            return _read_header(handle, os.fstat(handle.fileno()).st_size)
    except OSError as error:
        raise SnapshotError(f"cannot read snapshot {path}: {error}") from error


def _read_header(handle: BinaryIO, size: int) -> SnapshotHeader:
    if size < _TRAILER.size:
        raise SnapshotError("snapshot is truncated (no trailer)")
    handle.seek(size - _TRAILER.size)
    header_length, header_sha256, magic = _TRAILER.unpack(handle.read(_TRAILER.size))
    if magic in _OLDER_MAGICS:
        raise SnapshotError(f"snapshot is in the older format {_OLDER_MAGICS[magic]}")
    if magic != MAGIC:
        raise SnapshotError("snapshot trailer magic is wrong (not a snapshot, or damaged)")
    if header_length > min(_MAX_HEADER_BYTES, size - _TRAILER.size):
        raise SnapshotError(f"snapshot header length {header_length} is impossible")
    handle.seek(size - _TRAILER.size - header_length)
    encoded = handle.read(header_length)
    if hashlib.sha256(encoded).digest() != header_sha256:
        raise SnapshotError("snapshot header checksum does not match: the file is damaged")
    try:
        raw = json.loads(encoded)
        header = SnapshotHeader(
            watermark=Watermark(**raw.pop("watermark")),
            **raw,
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise SnapshotError(f"snapshot header is not valid: {error}") from error
    if header.format_version != FORMAT_VERSION:
        raise SnapshotError(f"snapshot format {header.format_version} is not {FORMAT_VERSION}")
    if header.payload_bytes != size - _TRAILER.size - header_length:
        raise SnapshotError("snapshot payload length does not match the file size")
    return header


def load_snapshot(path: Path, spec: IndexSpec) -> tuple[VectorIndex, SnapshotHeader]:
    """Load the index, verifying the payload checksum as the bytes stream into FAISS."""
    try:
        with open(path, "rb") as handle:
            header = _read_header(handle, os.fstat(handle.fileno()).st_size)
            handle.seek(0)
            digest = hashlib.sha256()
            remaining = header.payload_bytes

            def source(size: int) -> bytes:
                nonlocal remaining
                chunk = handle.read(min(size, remaining))
                remaining -= len(chunk)
                digest.update(chunk)
                return chunk

            reader = faiss.PyCallbackIOReader(source)
            try:
                cpu_index = faiss.read_index(reader)
            except RuntimeError as error:
                raise SnapshotError(f"FAISS could not read the snapshot: {error}") from error
            finally:
                del reader
            # Hash whatever FAISS did not consume so the checksum covers every byte.
            while remaining > 0 and source(1 << 20):
                pass
    except OSError as error:
        raise SnapshotError(f"cannot read snapshot {path}: {error}") from error
    if digest.hexdigest() != header.payload_sha256:
        raise SnapshotError("snapshot checksum does not match: the file is damaged")
    if cpu_index.d != header.watermark.dim:
        raise SnapshotError(f"snapshot index has dimension {cpu_index.d}, header says otherwise")
    index, on_gpu, resources = cpu_index, False, None
    if spec.index_use_gpu and gpu_available() and header.effective_type != "hnsw":
        # GPU indexes delete by tombstone, which needs the id map a CPU IVF lacks.
        if not isinstance(cpu_index, faiss.IndexIDMap):
            raise SnapshotError("snapshot was written by a CPU-only process; rebuilding for GPU")
        resources = faiss.StandardGpuResources()
        try:
            index = faiss.index_cpu_to_gpu(resources, 0, cpu_index)
        except RuntimeError as error:
            raise SnapshotError(f"cannot move the snapshot to the GPU: {error}") from error
        on_gpu = True
    return (
        VectorIndex(
            header.watermark.dim,
            spec,
            index,
            effective_type=header.effective_type,
            on_gpu=on_gpu,
            tombstones=header.tombstones,
            gpu_resources=resources,
        ),
        header,
    )
