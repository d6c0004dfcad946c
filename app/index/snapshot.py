"""Index snapshots: a fast start-up that can never serve a stale or damaged index.

File layout (one file, so it is replaced atomically as a whole)::

    <FAISS index bytes> <header JSON> <header length: u64 LE> <header SHA-256> b"REIDSNP2"

The header is the watermark: the gallery state the index was taken from
(model version, dimension, index structure, live count, highest entry id,
tombstones) plus the SHA-256 and length of the index bytes. The trailer holds
the header's own SHA-256, so a flipped byte in the watermark or the tombstones
(which decide what the index may serve) is caught as surely as one in the index. Start-up uses a
snapshot only when its watermark equals the database's current state and the
checksum verifies; anything else (crash after newer commits, older copy, bytes
overwritten, another model) means a rebuild from the database.

Writing goes to a temporary file in the same directory, is fsynced, then
``os.replace``d over the old snapshot and the directory fsynced, so a crash at
any point leaves either the old snapshot or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import faiss

from app.index.backends import gpu_available
from app.index.spec import IndexSpec
from app.index.vector_index import VectorIndex

MAGIC = b"REIDSNP2"
_OLDER_MAGIC = b"REIDSNP1"  # format 1: no header checksum; such a snapshot is rebuilt
FORMAT_VERSION = 2
_TRAILER = struct.Struct("<Q32s8s")
_MAX_HEADER_BYTES = 64 * 1024 * 1024


class SnapshotError(ValueError):
    """The snapshot is unusable; the message says why (logged, then the index is rebuilt)."""


@dataclass(frozen=True)
class Watermark:
    """The gallery state an index reflects."""

    model_version: str
    dim: int
    structure: dict[str, Any]
    count: int
    max_id: int


@dataclass(frozen=True)
class SnapshotHeader:
    watermark: Watermark
    effective_type: str
    tombstones: list[int]
    payload_bytes: int
    payload_sha256: str
    format_version: int = FORMAT_VERSION


def write_snapshot(path: Path, index: VectorIndex, model_version: str) -> Watermark:
    """Atomically replace ``path`` with a snapshot of ``index``; returns its watermark."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
                ids = index.ids()
                watermark = Watermark(
                    model_version=model_version,
                    dim=index.dim,
                    structure=index.spec.structure(),
                    count=len(ids),
                    max_id=int(ids[-1]) if len(ids) else 0,
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
    if magic != MAGIC:
        raise SnapshotError(
            "snapshot is in the older format 1 (no header checksum)"
            if magic == _OLDER_MAGIC
            else "snapshot trailer magic is wrong (not a snapshot, or damaged)"
        )
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
