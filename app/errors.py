"""What can go wrong, in the service's own words: the domain's exceptions.

Every layer below the API (gallery, jobs, inference, index) raises these and
nothing HTTP. Each carries the stable ``code`` that clients branch on, a
``message`` saying what to change, and optional ``details``. The *kind* of a
failure is its base class; ``app/api/errors.py`` is the one place that turns a
kind into an HTTP status, so the same failure reads the same from every
endpoint, a CLI, or a background job.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ReidError(Exception):
    """A failure a caller can act on; ``code`` is part of the public contract."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, details: Any = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance codes such as invalid_camera


class InvalidInput(ReidError):
    """The request itself is wrong (a field, a file, a label); sending it again fails again."""

    code = "invalid_input"


class LimitExceeded(ReidError):
    """The request is well formed but larger than a configured limit allows."""

    code = "limit_exceeded"


class NotFound(ReidError):
    """The thing named does not exist (any more)."""

    code = "not_found"


class Conflict(ReidError):
    """The request clashes with what the gallery holds now."""

    code = "conflict"


class StorageFailure(ReidError):
    """The data directory refused a write (disk full, permissions); nothing was stored."""

    code = "storage_error"
