"""Every error code is listed once, with its status, in the catalogue, the docs and OpenAPI.

The source is scanned for the codes it raises, so a new code that nobody listed
fails here rather than surprising a client.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from app.api.error_codes import ERROR_CODES, JOB_FAILURE_CODES
from app.errors import ReidError

ROOT = Path(__file__).resolve().parents[3]
_RAISED = [
    r'code\s*=\s*"([a-z_]+)"',
    r'ApiError\(\s*\d+,\s*"([a-z_]+)"',
    r'Refusal\(\s*\d+,\s*"([a-z_]+)"',
    r'error_response\(\s*\d+,\s*"([a-z_]+)"',
    r'ImageDecodeError\(\s*"([a-z_]+)"',
    r'\d{3}: "([a-z_]+)",',  # the router's own HTTP errors
    r'self\._jobs\.fail,\s*job_id,\s*"([a-z_]+)"',
]
# Abstract kinds: the default code of a base class that is only ever raised as a subclass.
_KINDS = {"error", "invalid_input", "limit_exceeded"}
# ``code=f"invalid_{field}"`` in app/gallery/entry_fields.py, for these fields.
_FIELD_CODES = {"invalid_identity", "invalid_camera", "invalid_source"}


def raised_codes() -> set[str]:
    sources = [*(ROOT / "app").rglob("*.py"), ROOT / "model" / "preprocessing.py"]
    found = set(_FIELD_CODES)
    for path in sources:
        if path.name == "error_codes.py":
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in _RAISED:
            found.update(re.findall(pattern, text))
    return found - _KINDS


def test_every_raised_code_is_catalogued() -> None:
    catalogued = set(ERROR_CODES) | set(JOB_FAILURE_CODES)
    assert raised_codes() - catalogued == set()
    assert catalogued - raised_codes() == set(), "catalogued but never raised"


def test_the_abstract_kinds_are_never_raised_as_such() -> None:
    for kind in ReidError.__subclasses__():
        assert kind.code in _KINDS | {"not_found", "conflict", "storage_error"}


def test_docs_list_each_code_once_with_its_status() -> None:
    text = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", text, re.MULTILINE)
    assert len(rows) == len({code for _, code in rows}), "a code is listed twice"
    assert {code: int(status) for status, code in rows} == {
        code: entry.status for code, entry in ERROR_CODES.items()
    }
    job_table = text.split("| Job `error.code` | When |", 1)[1].split("\n\n", 1)[0]
    jobs = re.findall(r"^\| `([a-z_]+)` \|", job_table, re.MULTILINE)
    assert jobs == list(JOB_FAILURE_CODES)


def test_openapi_lists_each_routes_codes_by_status(shared: TestClient) -> None:
    schema = shared.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            secured = "security" in operation or any(
                param.get("name") == "X-API-Key" for param in operation.get("parameters", [])
            )
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json", {})
                codes = (
                    content.get("schema", {})
                    .get("properties", {})
                    .get("error", {})
                    .get("properties", {})
                    .get("code", {})
                    .get("enum")
                )
                if int(status) >= 400 and codes is not None:
                    assert codes, where
                    for code in codes:
                        assert ERROR_CODES[code].status == int(status), (where, code)
            statuses = set(operation["responses"])
            assert "403" in statuses, f"{where}: remote_access_disabled is not documented"
            if secured:
                assert {"401", "403"} <= statuses, where
