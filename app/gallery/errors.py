"""The gallery's failures, each with the stable code clients branch on (see docs/service.md)."""

from __future__ import annotations

from app.errors import Conflict, InvalidInput, LimitExceeded, NotFound, StorageFailure


class InvalidField(InvalidInput):
    """A client-supplied field breaks its rule; the code names the field (``invalid_camera``)."""


class MetadataTooLarge(LimitExceeded):
    code = "metadata_too_large"


class DuplicateImage(Conflict):
    """The bytes are already enrolled under another identity."""

    code = "duplicate_image"


class ModelVersionMismatch(Conflict):
    """The database holds embeddings of another model; they cannot be compared."""

    code = "model_version_mismatch"


class GalleryChanged(Conflict):
    """A racing request changed the rows this one relied on; retrying settles it."""

    code = "conflict"


class EntryNotFound(NotFound):
    code = "entry_not_found"


class IdentityNotFound(NotFound):
    code = "identity_not_found"


class CalibrationNotFound(NotFound):
    """No site calibration is stored for the loaded model version."""

    code = "calibration_not_found"


class CropMissing(NotFound):
    """The row exists but its stored crop is gone from the data directory."""

    code = "image_not_found"


class CropNotStored(StorageFailure):
    code = "storage_error"


class InvalidQuery(InvalidInput):
    """Query fields that contradict each other: ``camera_required``, ``invalid_time_window``."""
