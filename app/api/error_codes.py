"""Every error code the service can answer with, once: its HTTP status and what it means.

This table is the contract clients branch on. Routes declare which codes they
can return (``responses=error_responses(...)``), and the OpenAPI document then
lists, per status, exactly those codes as an ``enum`` of the error body's
``code``, so a schema-driven fuzzer that gets any other code or status fails.
docs/service.md carries the same table for people; a test keeps the two, and
the codes raised in the source, equal.

Job failure codes are not HTTP answers: they appear in ``GET /evaluate/{id}``
and ``GET /calibrate/{id}`` as the ``error.code`` of a failed job, and have no
status here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    status: int
    meaning: str


ERROR_CODES: dict[str, ErrorCode] = {
    "bad_request": ErrorCode(400, "The body is not well-formed multipart"),
    "unauthenticated": ErrorCode(401, "No API key was sent (with `WWW-Authenticate: Bearer`)"),
    "invalid_api_key": ErrorCode(401, "The API key is not one the service knows"),
    "forbidden": ErrorCode(403, "The key's role is too low (`details.role`, `details.required`)"),
    "remote_access_disabled": ErrorCode(
        403, "No keys are configured and the client is not on loopback"
    ),
    "not_found": ErrorCode(404, "No such path"),
    "entry_not_found": ErrorCode(404, "No entry with this id"),
    "identity_not_found": ErrorCode(404, "No entry holds this identity"),
    "image_not_found": ErrorCode(
        404, "The entry's stored crop is missing from the data directory (or no longer decodes)"
    ),
    "job_not_found": ErrorCode(
        404,
        "No job with this id (evaluation jobs under /evaluate, calibration jobs under /calibrate)",
    ),
    "calibration_not_found": ErrorCode(
        404, "No site calibration is stored for the loaded model version"
    ),
    "method_not_allowed": ErrorCode(405, "The path exists, but not with this method"),
    "not_acceptable": ErrorCode(406, "The `Accept` header excludes every type the route answers"),
    "duplicate_image": ErrorCode(409, "The bytes are enrolled under another identity"),
    "model_version_mismatch": ErrorCode(
        409, "The database holds embeddings of another model (see Model versions)"
    ),
    "conflict": ErrorCode(409, "The gallery changed under a racing request; retry"),
    "empty_gallery": ErrorCode(
        409, "A labelled-query evaluation or a calibration with nothing enrolled"
    ),
    "attention_unavailable": ErrorCode(
        409, "`POST /explain`: the loaded model has no spatial attention to draw"
    ),
    "body_too_large": ErrorCode(
        413, "The body is over `details.setting` (declared, or counted while streaming)"
    ),
    "too_many_files": ErrorCode(413, "More file parts than `details.setting` allows"),
    "too_many_fields": ErrorCode(413, "More text fields than `REID_MAX_FORM_FIELDS` allows"),
    "file_too_large": ErrorCode(413, "One file is over `REID_MAX_FILE_BYTES` (`details.filename`)"),
    "too_many_pixels": ErrorCode(413, "An image decodes to more than `REID_MAX_IMAGE_PIXELS`"),
    "metadata_too_large": ErrorCode(413, "`metadata` is over `REID_MAX_METADATA_BYTES`"),
    "zip_too_many_files": ErrorCode(413, "The zip has more members than `REID_ZIP_MAX_FILES`"),
    "zip_member_too_large": ErrorCode(413, "A zip member is over `REID_MAX_FILE_BYTES`"),
    "zip_too_large": ErrorCode(413, "The zip unpacks past `REID_ZIP_MAX_UNCOMPRESSED_BYTES`"),
    "zip_bomb": ErrorCode(413, "A member's compression ratio is over `REID_ZIP_MAX_RATIO`"),
    "gallery_too_large": ErrorCode(
        413, "The zip's (or the live) gallery is over `REID_EVALUATE_MAX_GALLERY`"
    ),
    "unsupported_media_type": ErrorCode(415, "The body's content type is not one the route reads"),
    "validation_error": ErrorCode(
        422, "A missing or mistyped field, or a number out of range (`details` lists each)"
    ),
    "invalid_text_encoding": ErrorCode(
        422, "A form field is not UTF-8, or names another charset (`details.field`)"
    ),
    "duplicate_field": ErrorCode(422, "A text field is sent more than once (`details.field`)"),
    "empty_file": ErrorCode(422, "A file is empty"),
    "invalid_image": ErrorCode(422, "A file is not a decodable image (corrupt, truncated)"),
    "unsupported_format": ErrorCode(
        422, "An image is not JPEG, PNG or WebP, or has floating-point pixels"
    ),
    "invalid_identity": ErrorCode(422, "The identity breaks the identity rule"),
    "invalid_camera": ErrorCode(422, "The camera breaks the identity rule (64 characters)"),
    "invalid_source": ErrorCode(422, "The source breaks the identity rule (256 characters)"),
    "invalid_metadata": ErrorCode(
        422,
        "`metadata` is not a JSON object that every read can return: nested at most 32 deep, "
        "valid Unicode (no lone surrogates), numbers within a double's range (no NaN, no 1e400)",
    ),
    "invalid_timestamp": ErrorCode(
        422, "A time lies outside years 1-9999 once converted to UTC (`details.field`)"
    ),
    "camera_required": ErrorCode(422, "`exclude_same_camera` without `camera`"),
    "invalid_time_window": ErrorCode(422, "`captured_after` is later than `captured_before`"),
    "invalid_cursor": ErrorCode(422, "The cursor is not one this service handed out"),
    "invalid_evaluation_request": ErrorCode(
        422, "Neither or both of `dataset` and `images` + `identities`"
    ),
    "invalid_evaluation_options": ErrorCode(
        422, "`rerank` is not a boolean, or `aqe` is not a whole number from 1 to the gallery size"
    ),
    "invalid_labels": ErrorCode(
        422, "`identities`/`cameras` are not JSON arrays, one entry per image (metadata JSON rules)"
    ),
    "unsafe_zip": ErrorCode(422, "A member's path escapes the archive, or is a link"),
    "invalid_zip": ErrorCode(422, "Not a readable zip archive"),
    "invalid_dataset_layout": ErrorCode(422, "The zip is not laid out as Market-1501"),
    "internal_error": ErrorCode(500, "A bug; logged with its traceback, never sent to the client"),
    "database_unavailable": ErrorCode(
        503, "The database failed or stayed busy; nothing was changed; retry (`Retry-After`)"
    ),
    "storage_error": ErrorCode(507, "The crop could not be written (disk full, permissions)"),
}

JOB_FAILURE_CODES: dict[str, str] = {
    "invalid_zip": "A zip member fails its CRC, or is cut off, while the job reads it",
    "no_decodable_images": "No query (or gallery) image of the job decodes",
    "no_matching_identity": "No labelled query's identity is enrolled, so nothing can be scored",
    "empty_gallery": "The gallery was emptied before the job ran",
    "model_version_mismatch": "The gallery holds another model's embeddings by the time it ran",
    "zip_member_too_large": "A zip member expands past the size its header declared",
    "insufficient_calibration_data": "The crops cannot support a calibration: no non-mated "
    "probe, or fewer impostor scores than the fit needs; the message says which",
    "interrupted": "The service stopped while the job ran; submit it again",
    "evaluation_failed": "Anything else; the message says what, and the log has the traceback",
}

# Codes every route that states a role can answer with, before its own.
AUTH_CODES = ("remote_access_disabled", "unauthenticated", "invalid_api_key", "forbidden")
# Codes of any multipart upload, from the body limit, the form guard and the parser.
UPLOAD_CODES = (
    "bad_request",
    "body_too_large",
    "too_many_files",
    "too_many_fields",
    "file_too_large",
    "invalid_text_encoding",
    "duplicate_field",
    "validation_error",
)
IMAGE_CODES = ("empty_file", "invalid_image", "unsupported_format", "too_many_pixels")
# Codes of an entry's own fields, on enrollment.
ENTRY_FIELD_CODES = (
    "invalid_identity",
    "invalid_camera",
    "invalid_source",
    "invalid_metadata",
    "metadata_too_large",
    "invalid_timestamp",
)


def error_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these codes: one entry per status, its codes as an enum."""
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):  # ordered and without repeats
        by_status.setdefault(ERROR_CODES[code].status, []).append(code)
    return {
        status: {
            "description": "; ".join(f"`{code}`: {ERROR_CODES[code].meaning}" for code in group),
            "content": {"application/json": {"schema": _error_schema(group)}},
        }
        for status, group in sorted(by_status.items())
    }


def _error_schema(codes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "string", "enum": codes},
                    "message": {"type": "string"},
                    "details": {},
                },
            }
        },
    }
