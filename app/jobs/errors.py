"""Why an evaluation request is refused, or why an accepted job failed."""

from __future__ import annotations

from app.errors import Conflict, InvalidInput, LimitExceeded, NotFound, ReidError


class InvalidLabels(InvalidInput):
    code = "invalid_labels"


class UnsafeZip(InvalidInput):
    code = "unsafe_zip"


class InvalidZip(InvalidInput):
    code = "invalid_zip"


class InvalidDatasetLayout(InvalidInput):
    code = "invalid_dataset_layout"


class ZipOverLimit(LimitExceeded):
    """File count, member size, total size or compression ratio; the code says which."""


class EmptyGallery(Conflict):
    code = "empty_gallery"


class GalleryTooLarge(LimitExceeded):
    code = "gallery_too_large"


class JobNotFound(NotFound):
    code = "job_not_found"


class JobFailed(ReidError):
    """An accepted job could not finish; recorded on the job, never raised to a client."""


class InvalidEvaluationOptions(InvalidInput):
    code = "invalid_evaluation_options"
