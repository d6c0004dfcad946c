"""Properties over the classes of hostile client JSON and timestamps, below HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import ReidError
from app.gallery.client_json import MAX_DEPTH, load_client_json, nesting_depth
from app.gallery.entry_fields import as_utc
from app.gallery.errors import InvalidField

# Text including lone surrogates, which json.dumps escapes and json.loads restores.
TEXT = st.text(
    st.characters(codec=None) | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=20,
)
HUGE_NUMBERS = st.sampled_from(["1e400", "-1e999", "123456789e330"])


def as_raw(value: object, depth: int, huge: str | None) -> str:
    """JSON text of ``value`` wrapped ``depth`` deep, maybe with a number past a double."""
    body = json.dumps(value, allow_nan=True)  # infinity becomes the non-JSON 'Infinity'
    if huge is not None:
        body = f"[{body}, {huge}]"
    return "[" * depth + body + "]" * depth


def refuse(message: str) -> ReidError:
    return InvalidField(message, code="invalid_metadata")


@given(VALUES, st.integers(0, 2 * MAX_DEPTH), st.none() | HUGE_NUMBERS)
def test_accepted_json_is_exactly_what_every_read_serialises(
    value: object, depth: int, huge: str | None
) -> None:
    raw = as_raw(value, depth, huge)
    try:
        loaded = load_client_json(raw, "metadata", refuse)
    except InvalidField:
        return  # refused with the field's code: fine; anything else propagates and fails
    json.dumps(loaded, ensure_ascii=False, allow_nan=False).encode("utf-8")  # the read path
    assert nesting_depth(loaded) <= MAX_DEPTH
    assert huge is None
    assert json.loads(raw) == loaded


def test_each_unstorable_kind_is_refused() -> None:
    for raw in ('{"a": "\\ud800"}', '{"a": 1e400}', "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)):
        with pytest.raises(InvalidField):
            load_client_json(raw, "metadata", refuse)
    with pytest.raises(InvalidField, match="not valid JSON"):
        load_client_json("[" * 100_000, "metadata", refuse)
    assert load_client_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "metadata", refuse) is not None


OFFSETS = st.builds(
    timezone,
    st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
    ),
)


@given(st.datetimes(), st.none() | OFFSETS)
def test_every_timestamp_becomes_utc_or_a_clear_refusal(
    moment: datetime, zone: timezone | None
) -> None:
    value = moment.replace(tzinfo=zone)
    try:
        converted = as_utc(value, "captured_at")
    except InvalidField as error:
        assert error.code == "invalid_timestamp" and error.details == {"field": "captured_at"}
        return
    assert converted is not None and converted.tzinfo is UTC
    assert converted == value if zone is not None else converted == value.replace(tzinfo=UTC)
