"""Check a multipart body's parts as they stream in, before the app's parser keeps them.

Starlette's parser has two habits our rules forbid: it decodes a text field
that is not valid UTF-8 as Latin-1 (``FF FE C3 28`` becomes "ÿþÃ(", a value the
client never sent, silently stored), and it counts files against its own fixed
default (1,000) rather than our settings. This guard runs an independent
streaming parse of the same bytes, just ahead of the app's: it counts file
parts and text fields against :class:`~app.api.limits.FormLimits`, and refuses
a text field that is not UTF-8, or that is sent twice (the app would silently
keep one of the values), with the field's name. The app's parser then
never sees the part that broke a rule. A body that is not well-formed
multipart is left to the app's parser, which answers 400 ``bad_request``.
"""

from __future__ import annotations

from collections.abc import Callable

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.limits import FormLimits
from app.api.middleware import Refusal, send_refusal, serve_unless_refused
from app.telemetry import Telemetry

_UTF8_NAMES = frozenset({"utf-8", "utf8"})


class _PartChecker:
    """Feeds body chunks to a multipart parser and judges each part when its headers end."""

    def __init__(self, boundary: bytes, limits: FormLimits) -> None:
        self.limits = limits
        self.files = 0
        self.fields: set[str] = set()
        self.refusal: Refusal | None = None
        self._broken = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field_name = ""
        self._is_field = False
        self._value = bytearray()
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def feed(self, chunk: bytes) -> Refusal | None:
        if self._broken or not chunk:
            return self.refusal
        try:
            self._parser.write(chunk)
        except MultipartParseError:
            self._broken = True  # the app's parser reports the malformed body itself
        return self.refusal

    def _part_begin(self) -> None:
        self._disposition = b""
        self._value.clear()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._field_name = options.get(b"name", b"").decode("utf-8", "replace")
        self._is_field = b"filename" not in options
        limits = self.limits
        if self._is_field:
            if self._field_name in self.fields:
                self._refuse_text(
                    "is sent more than once; send each text field once", code="duplicate_field"
                )
                return
            self.fields.add(self._field_name)
            if len(self.fields) > limits.max_fields:
                self._refuse_count(
                    limits.max_fields, limits.fields_setting, "text fields", code="too_many_fields"
                )
        else:
            self.files += 1
            if self.files > limits.max_files:
                self._refuse_count(
                    limits.max_files, limits.files_setting, "files", code="too_many_files"
                )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_field:
            self._value += data[start:end]

    def _part_end(self) -> None:
        if not self._is_field or self.refusal is not None:
            return
        try:
            text = bytes(self._value).decode("utf-8")
        except UnicodeDecodeError as error:
            self._refuse_text(
                f"is not valid UTF-8 (byte {error.start})", code="invalid_text_encoding"
            )
            return
        if self._field_name == "_charset_" and text.strip().lower() not in _UTF8_NAMES:
            self._refuse_text(
                f"names charset {text!r}; form text is always UTF-8", code="invalid_text_encoding"
            )

    def _refuse_count(self, limit: int, setting: str, what: str, *, code: str) -> None:
        self.refusal = self.refusal or Refusal(
            413,
            code,
            f"more than {limit} {what} in one request; the limit for this endpoint is {limit} "
            f"({setting})",
            {"limit": limit, "setting": setting},
        )

    def _refuse_text(self, problem: str, *, code: str) -> None:
        self.refusal = self.refusal or Refusal(
            422,
            code,
            f"form field {self._field_name!r} {problem}",
            {"field": self._field_name},
        )


def multipart_boundary(headers: Headers) -> bytes | None:
    content_type, options = parse_options_header(headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        return None
    return options.get(b"boundary") or None


class FormGuardMiddleware:
    def __init__(
        self, app: ASGIApp, *, limits_for: Callable[[Scope], FormLimits], telemetry: Telemetry
    ) -> None:
        self.app = app
        self.limits_for = limits_for
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        boundary = multipart_boundary(Headers(scope=scope)) if scope["type"] == "http" else None
        if boundary is None:
            await self.app(scope, receive, send)
            return
        checker = _PartChecker(boundary, self.limits_for(scope))
        refusal = await serve_unless_refused(self.app, scope, receive, send, checker.feed)
        if refusal is not None:
            await send_refusal(send, refusal, self.telemetry)
