"""JSON that clients send inside form fields, held to what the service can store and return.

A value is accepted only if it survives exactly the serialisation that every
later read applies (``json.dumps`` with ``allow_nan=False`` and
``ensure_ascii=False``, then UTF-8), and is nested at most ``MAX_DEPTH`` deep.
Otherwise a client could store something (a lone surrogate, ``1e400`` parsed as
infinity, 300 nested lists) that every later read of the entry fails on, or
that a database silently turns into ``null``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from app.errors import ReidError

MAX_DEPTH = 32

Refusal = Callable[[str], ReidError]


def load_client_json(raw: str, field: str, refuse: Refusal) -> Any:
    """Parse ``raw``; ``refuse(message)`` builds the error for anything unstorable."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise refuse(f"{field} is not valid JSON: {_short(error)}") from error
    depth = nesting_depth(value)
    if depth > MAX_DEPTH:
        raise refuse(f"{field} is nested {depth} levels deep; at most {MAX_DEPTH} are allowed")
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise refuse(
            f"{field} holds text that is not valid Unicode (a lone surrogate such as "
            f"\\u{ord(error.object[error.start]):04x})"
        ) from error
    except ValueError as error:  # a number too large for a double parses to infinity
        raise refuse(f"{field} holds a number outside the range of a double") from error
    return value


def nesting_depth(value: Any) -> int:
    """How many arrays/objects deep ``value`` goes (a scalar is 0); no recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_DEPTH:
            return deepest
        pending.extend((child, depth + 1) for child in children)
    return deepest


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, and PostgreSQL would refuse them later.
    raise ValueError(f"{name} is not a JSON value")


def _short(error: Exception) -> str:
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)
