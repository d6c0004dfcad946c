"""Which of our settings bounds each request, by route: body bytes and multipart parts.

Every upload limit the service enforces is one of its settings, and each
refusal names the setting (``details.setting``), so an operator who meets a
limit knows which knob it is. ``POST /evaluate`` and ``POST /calibrate`` carry
whole datasets and have their own, larger limits; every other route shares the
general ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope

from app.settings import Settings


@dataclass(frozen=True)
class BodyLimit:
    bytes: int
    setting: str


@dataclass(frozen=True)
class FormLimits:
    """Bounds on a multipart body's parts: files (with a filename) and text fields."""

    max_files: int
    files_setting: str
    max_fields: int
    fields_setting: str = "REID_MAX_FORM_FIELDS"


@dataclass(frozen=True)
class RequestLimits:
    general_body: BodyLimit
    evaluate_body: BodyLimit
    general_form: FormLimits
    evaluate_form: FormLimits

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        return cls(
            general_body=BodyLimit(settings.max_body_bytes, "REID_MAX_BODY_BYTES"),
            evaluate_body=BodyLimit(
                settings.evaluate_max_upload_bytes, "REID_EVALUATE_MAX_UPLOAD_BYTES"
            ),
            general_form=FormLimits(
                settings.max_files_per_request,
                "REID_MAX_FILES_PER_REQUEST",
                settings.max_form_fields,
            ),
            evaluate_form=FormLimits(
                settings.zip_max_files, "REID_ZIP_MAX_FILES", settings.max_form_fields
            ),
        )

    def body(self, scope: Scope) -> BodyLimit:
        return self.evaluate_body if _is_dataset_upload(scope) else self.general_body

    def form(self, scope: Scope) -> FormLimits:
        return self.evaluate_form if _is_dataset_upload(scope) else self.general_form

    @property
    def parser_ceiling(self) -> dict[str, int]:
        """Starlette's own multipart limits, set above ours so that ours always answer first."""
        largest_body = max(self.general_body.bytes, self.evaluate_body.bytes)
        return {
            "max_files": max(self.general_form.max_files, self.evaluate_form.max_files) + 1,
            "max_fields": max(self.general_form.max_fields, self.evaluate_form.max_fields) + 1,
            "max_part_size": largest_body + 1,
        }


_DATASET_UPLOADS = ("/evaluate", "/calibrate")


def _is_dataset_upload(scope: Scope) -> bool:
    return scope.get("path") in _DATASET_UPLOADS and scope.get("method") == "POST"
