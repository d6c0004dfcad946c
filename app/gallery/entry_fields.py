"""What a client says about an entry, and the rules it must follow.

Covers identities, cameras, sources, metadata and capture times.

Identities appear in URL paths (``/identities/{identity}``), logs and exports,
so the rule is: any printable Unicode (letters of every script, digits,
punctuation, symbols and emoji, including ZWJ sequences), NFC-normalised,
1–128 characters, no leading or trailing whitespace, and none of ``/`` ``\\``,
control or invisible format characters (NUL, bidi overrides, ...), nor the
path segments ``.`` and ``..``. Text that merely looks like SQL is stored as
typed: every query is parameterised.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.gallery.client_json import load_client_json
from app.gallery.errors import InvalidField, MetadataTooLarge

IDENTITY_MAX_CHARS = 128
CAMERA_MAX_CHARS = 64
SOURCE_MAX_CHARS = 256
# Unicode categories that are never visible text: control, format, surrogate,
# private use, unassigned.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Format characters that are part of ordinary emoji sequences.
_ALLOWED_FORMAT_CHARS = frozenset({"\u200d"})
_FORBIDDEN_CHARS = frozenset("/\\")


def _check_label(field: str, value: str, max_chars: int) -> str:
    normalised = unicodedata.normalize("NFC", value)
    problem: str | None = None
    if not normalised:
        problem = "must not be empty"
    elif len(normalised) > max_chars:
        problem = f"is {len(normalised)} characters; at most {max_chars} are allowed"
    elif normalised != normalised.strip():
        problem = "must not start or end with whitespace"
    elif normalised in {".", ".."}:
        problem = "must not be '.' or '..'"
    else:
        for position, char in enumerate(normalised):
            if char in _FORBIDDEN_CHARS:
                problem = f"must not contain {char!r} (position {position})"
                break
            if (
                unicodedata.category(char) in _FORBIDDEN_CATEGORIES
                and char not in _ALLOWED_FORMAT_CHARS
            ):
                problem = (
                    f"must not contain control or invisible character U+{ord(char):04X} "
                    f"(position {position})"
                )
                break
    if problem is not None:
        raise InvalidField(f"{field} {problem}", {"field": field}, code=f"invalid_{field}")
    return normalised


def check_identity(value: str) -> str:
    """Validate and NFC-normalise an identity name."""
    return _check_label("identity", value, IDENTITY_MAX_CHARS)


def check_camera(value: str | None) -> str | None:
    return None if value is None else _check_label("camera", value, CAMERA_MAX_CHARS)


def check_source(value: str | None) -> str | None:
    return None if value is None else _check_label("source", value, SOURCE_MAX_CHARS)


def parse_metadata(raw: str | None, max_bytes: int) -> dict[str, Any] | None:
    """Parse the ``metadata`` form field: a JSON object of bounded size."""
    if raw is None or raw == "":
        return None
    size = len(raw.encode("utf-8"))
    if size > max_bytes:
        raise MetadataTooLarge(
            f"metadata is {size} bytes; the limit is {max_bytes} (REID_MAX_METADATA_BYTES)",
            {"field": "metadata", "bytes": size, "limit": max_bytes},
        )
    value = load_client_json(raw, "metadata", _invalid_metadata)
    if not isinstance(value, dict):
        raise InvalidField(
            f"metadata must be a JSON object, got {type(value).__name__}",
            {"field": "metadata"},
            code="invalid_metadata",
        )
    return value


def _invalid_metadata(message: str) -> InvalidField:
    return InvalidField(message, {"field": "metadata"}, code="invalid_metadata")


def as_utc(value: datetime | None, field: str) -> datetime | None:
    """Timestamps without a zone are taken as UTC; one that UTC cannot hold is refused.

    ``9999-12-31T23:59:59-01:00`` is a valid ISO-8601 time whose UTC form lies
    past the calendar's end (and ``0001-01-01T00:00:00+01:00`` before its start).
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as error:
        raise InvalidField(
            f"{field} {value.isoformat()} lies outside the years 1-9999 once converted to UTC",
            {"field": field},
            code="invalid_timestamp",
        ) from error


@dataclass(frozen=True)
class EntryFields:
    """What the client says about the crops of one enrollment request, validated."""

    identity: str
    camera: str | None = None
    captured_at: datetime | None = None
    source: str | None = None
    extra: dict[str, Any] | None = None

    @classmethod
    def parse(
        cls,
        *,
        identity: str,
        camera: str | None,
        captured_at: datetime | None,
        source: str | None,
        metadata: str | None,
        max_metadata_bytes: int,
    ) -> EntryFields:
        """Apply every rule, in the order the fields are documented; the first failure raises."""
        return cls(
            identity=check_identity(identity),
            camera=check_camera(camera),
            captured_at=as_utc(captured_at, "captured_at"),
            source=check_source(source),
            extra=parse_metadata(metadata, max_metadata_bytes),
        )
