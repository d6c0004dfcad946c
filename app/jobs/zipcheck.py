"""Inspect an uploaded Market-1501 zip before trusting any of it.

Only the central directory is read here (no decompression): member names are
checked for traversal (absolute paths, ``..``, backslashes, drive letters),
links and encryption are refused, and the declared sizes are held against the
limits: file count, per-file size, total uncompressed size and compression
ratio (a zip bomb is small and expands enormously). Reading a member later
re-checks the real byte count, since declared sizes can lie.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from app.jobs.errors import InvalidDatasetLayout, InvalidZip, UnsafeZip, ZipOverLimit
from model.evaluation.layouts.market import EXAMPLE_NAME, parse_market_filename
from model.evaluation.layouts.records import JUNK_PID
from model.evaluation.layouts.split_folders import GALLERY_FOLDER, QUERY_FOLDER

# Small members compress extremely well legitimately (e.g. a blank PNG);
# the ratio rule applies to members bigger than this and to the archive total.
_RATIO_MIN_MEMBER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ZipLimits:
    """Limits on an uploaded zip; each field is named as its ``REID_*`` setting."""

    zip_max_files: int
    zip_max_uncompressed_bytes: int
    zip_max_ratio: float
    max_file_bytes: int  # per member, as for a directly uploaded file


@dataclass(frozen=True)
class Member:
    name: str
    pid: int
    camid: int


@dataclass
class MarketPlan:
    query: list[Member] = field(default_factory=list)
    gallery: list[Member] = field(default_factory=list)
    junk: int = 0
    unrecognised: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "query_images": len(self.query),
            "gallery_images": len(self.gallery),
            "junk_dropped": self.junk,
            "unrecognised_files": self.unrecognised,
        }


def _unsafe(name: str, why: str) -> UnsafeZip:
    return UnsafeZip(
        f"zip member {name!r} is refused: {why}",
        {"member": name, "reason": why},
    )


def _check_name(info: zipfile.ZipInfo) -> None:
    name = info.filename
    if "\\" in name:
        raise _unsafe(name, "backslash in path")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _unsafe(name, "absolute path")
    if any(part == ".." for part in PurePosixPath(name).parts):
        raise _unsafe(name, "path traversal ('..')")
    if "\x00" in name:
        raise _unsafe(name, "NUL in path")
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        raise _unsafe(name, "symbolic link")
    if info.flag_bits & 0x1:
        raise _unsafe(name, "encrypted member")


def open_checked(path: Path, limits: ZipLimits) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """Open the archive and validate its directory; returns the file members."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise InvalidZip(f"the upload is not a readable zip: {error}") from error
    try:
        infos = archive.infolist()
        if len(infos) > limits.zip_max_files:
            raise ZipOverLimit(
                f"the zip holds {len(infos)} entries; at most {limits.zip_max_files} are allowed "
                "(REID_ZIP_MAX_FILES)",
                {"entries": len(infos), "limit": limits.zip_max_files},
                code="zip_too_many_files",
            )
        total = 0
        compressed = 0
        members = []
        for info in infos:
            _check_name(info)
            if info.is_dir():
                continue
            if info.file_size > limits.max_file_bytes:
                raise ZipOverLimit(
                    f"zip member {info.filename!r} expands to {info.file_size} bytes; the limit "
                    f"per file is {limits.max_file_bytes} (REID_MAX_FILE_BYTES)",
                    {"member": info.filename, "bytes": info.file_size},
                    code="zip_member_too_large",
                )
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_MIN_MEMBER_BYTES and ratio > limits.zip_max_ratio:
                raise ZipOverLimit(
                    f"zip member {info.filename!r} expands {ratio:.0f}x; at most "
                    f"{limits.zip_max_ratio:.0f}x is allowed (REID_ZIP_MAX_RATIO)",
                    {"member": info.filename, "ratio": ratio},
                    code="zip_bomb",
                )
            total += info.file_size
            compressed += info.compress_size
            members.append(info)
        if total > limits.zip_max_uncompressed_bytes:
            raise ZipOverLimit(
                f"the zip expands to {total} bytes; at most {limits.zip_max_uncompressed_bytes} "
                "are allowed (REID_ZIP_MAX_UNCOMPRESSED_BYTES)",
                {"uncompressed_bytes": total, "limit": limits.zip_max_uncompressed_bytes},
                code="zip_too_large",
            )
        if total > _RATIO_MIN_MEMBER_BYTES and total / max(compressed, 1) > limits.zip_max_ratio:
            raise ZipOverLimit(
                f"the zip expands {total / max(compressed, 1):.0f}x overall; at most "
                f"{limits.zip_max_ratio:.0f}x is allowed (REID_ZIP_MAX_RATIO)",
                {"ratio": total / max(compressed, 1)},
                code="zip_bomb",
            )
    except BaseException:
        archive.close()
        raise
    return archive, members


def plan_market_zip(members: list[zipfile.ZipInfo]) -> MarketPlan:
    """Sort members into query and gallery by folder; names parsed the Market-1501 way."""
    plan = MarketPlan()
    for info in members:
        parts = PurePosixPath(info.filename).parts
        if len(parts) < 2 or parts[-2] not in (QUERY_FOLDER, GALLERY_FOLDER):
            plan.unrecognised += 1
            continue
        parsed = parse_market_filename(parts[-1])
        if parsed is None:
            plan.unrecognised += 1
            continue
        pid, camid = parsed
        if pid == JUNK_PID:
            plan.junk += 1
            continue
        target = plan.query if parts[-2] == QUERY_FOLDER else plan.gallery
        target.append(Member(info.filename, pid, camid))
    if not plan.query or not plan.gallery:
        missing = [
            folder
            for folder, records in ((QUERY_FOLDER, plan.query), (GALLERY_FOLDER, plan.gallery))
            if not records
        ]
        raise InvalidDatasetLayout(
            f"the zip has no Market-1501 images under {', '.join(f'{m}/' for m in missing)}; "
            f"expected {QUERY_FOLDER}/ and {GALLERY_FOLDER}/ folders of files named like "
            f"{EXAMPLE_NAME}",
            {"missing_folders": missing},
        )
    return plan


def read_member(archive: zipfile.ZipFile, name: str, max_bytes: int) -> bytes:
    """Read one member, refusing to expand past ``max_bytes`` whatever its header says."""
    try:
        with archive.open(name) as handle:
            data = handle.read(max_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError) as error:  # a failed CRC, a cut-off member
        raise InvalidZip(
            f"zip member {name!r} cannot be read: {error}", {"member": name}
        ) from error
    if len(data) > max_bytes:
        raise ZipOverLimit(
            f"zip member {name!r} expands past {max_bytes} bytes",
            {"member": name},
            code="zip_member_too_large",
        )
    return data
