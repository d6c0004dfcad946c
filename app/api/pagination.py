"""Opaque cursors: clients pass back what they were given and never build one."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from app.api.errors import ApiError


def encode_cursor(kind: str, value: Any) -> str:
    raw = json.dumps({"k": kind, "v": value}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: str, value_type: type) -> Any:
    """The position a cursor stands for, or None for the first page."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(data, dict) or data.get("k") != kind:
            raise ValueError("wrong cursor kind")
        value = data["v"]
        if not isinstance(value, value_type) or isinstance(value, bool):
            raise ValueError("wrong cursor value")
        return value
    except (ValueError, KeyError, UnicodeDecodeError, binascii.Error) as error:
        raise ApiError(
            422,
            "invalid_cursor",
            "the cursor is not one this endpoint issued; start again without ?cursor=",
            {"field": "cursor"},
        ) from error
