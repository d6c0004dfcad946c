"""Multipart bodies are held to our settings and to UTF-8 as they stream in.

The classes: file and field counts over the route's limit (whatever
Starlette's own default), and form text that is not UTF-8 (which Starlette
would otherwise decode as Latin-1 and store). Each refusal names the setting
or the field, and nothing is stored.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from service_kit import ServiceHandle, assert_error, entries_of, files, person_jpeg, unique

GOOD = person_jpeg(3, 1, 0, seed=21)


def tiny_png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 16), (seed % 256, (seed // 256) % 256, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def multipart(parts: list[tuple[bytes, bytes | None, bytes]]) -> tuple[bytes, dict[str, str]]:
    """A hand-built body: (name, filename or None, raw value bytes) per part."""
    body = bytearray()
    for name, filename, value in parts:
        disposition = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"\r\nContent-Type: image/jpeg'
        body += b"--b0undary\r\n" + disposition + b"\r\n\r\n" + value + b"\r\n"
    body += b"--b0undary--\r\n"
    return bytes(body), {"content-type": "multipart/form-data; boundary=b0undary"}


def test_too_many_files_names_the_setting(shared: TestClient) -> None:
    identity = unique()
    images = [person_jpeg(2, 1, shot, seed=7) for shot in range(5)]
    response = shared.post("/gallery", data={"identity": identity}, files=files("many", *images))
    error = assert_error(response, 413, "too_many_files")
    assert error["details"] == {"limit": 4, "setting": "REID_MAX_FILES_PER_REQUEST"}
    assert "REID_MAX_FILES_PER_REQUEST" in error["message"]
    assert entries_of(shared, identity) == []


def test_too_many_text_fields(shared: TestClient) -> None:
    identity = unique()
    fields = [(b"identity", None, identity.encode())]
    fields += [(f"extra{i}".encode(), None, b"x") for i in range(40)]
    body, headers = multipart([*fields, (b"images", b"a.jpg", GOOD)])
    response = shared.post("/gallery", content=body, headers=headers)
    error = assert_error(response, 413, "too_many_fields")
    assert error["details"] == {"limit": 32, "setting": "REID_MAX_FORM_FIELDS"}
    assert entries_of(shared, identity) == []


# Byte strings that are not UTF-8: lone continuation bytes, overlong forms, surrogates
# encoded as UTF-8 (CESU), truncated sequences, and bytes that never occur in UTF-8.
_NOT_UTF8 = st.one_of(
    st.sampled_from(
        [b"\xff\xfe\xc3\x28", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"caf\xe9", b"\xe2\x82"]
    ),
    st.binary(min_size=1, max_size=24).filter(lambda raw: not _is_utf8(raw)),
)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=_NOT_UTF8, field=st.sampled_from([b"identity", b"camera", b"source", b"metadata"]))
def test_text_that_is_not_utf8_is_refused_not_reinterpreted(
    shared: TestClient, raw: bytes, field: bytes
) -> None:
    identity = unique()
    values = {b"identity": identity.encode(), field: raw}
    body, headers = multipart(
        [*((name, None, value) for name, value in values.items()), (b"images", b"a.jpg", GOOD)]
    )
    response = shared.post("/gallery", content=body, headers=headers)
    error = assert_error(response, 422, "invalid_text_encoding")
    assert error["details"] == {"field": field.decode()}
    if field != b"identity":
        assert entries_of(shared, identity) == []


def test_text_in_utf8_beyond_latin1_is_kept(shared: TestClient) -> None:
    identity = "café-" + unique() + "-ÿþ"
    body, headers = multipart(
        [
            (b"identity", None, identity.encode()),
            (b"metadata", None, '{"note": "Grüße ✓"}'.encode()),
            (b"images", b"a.jpg", person_jpeg(3, 1, 7, seed=22)),
        ]
    )
    response = shared.post("/gallery", content=body, headers=headers)
    assert response.status_code == 201, response.text
    [entry] = entries_of(shared, identity)
    assert entry["identity"] == identity
    assert entry["metadata"] == {"note": "Grüße ✓"}


def test_a_charset_other_than_utf8_is_refused(shared: TestClient) -> None:
    identity = unique()
    body, headers = multipart(
        [
            (b"_charset_", None, b"latin-1"),
            (b"identity", None, identity.encode()),
            (b"images", b"a.jpg", GOOD),
        ]
    )
    error = assert_error(
        shared.post("/gallery", content=body, headers=headers), 422, "invalid_text_encoding"
    )
    assert error["details"] == {"field": "_charset_"}
    assert entries_of(shared, identity) == []


@pytest.mark.parametrize("field", [b"identity", b"camera", b"metadata"])
def test_a_text_field_sent_twice_is_refused_not_half_kept(shared: TestClient, field: bytes) -> None:
    identity = unique()
    parts = [(b"identity", None, identity.encode()), (field, None, b'"a"'), (field, None, b'"b"')]
    if field == b"identity":
        parts = [(b"identity", None, identity.encode()), (b"identity", None, b"someone-else")]
    body, headers = multipart([*parts, (b"images", b"a.jpg", GOOD)])
    error = assert_error(
        shared.post("/gallery", content=body, headers=headers), 422, "duplicate_field"
    )
    assert error["details"] == {"field": field.decode()}
    assert entries_of(shared, identity) == []


def test_malformed_multipart_is_400_bad_request(shared: TestClient) -> None:
    headers = {"content-type": "multipart/form-data; boundary=b0undary"}
    response = shared.post("/gallery", content=b"--b0undary\r\nno headers end", headers=headers)
    assert_error(response, 400, "bad_request")


def test_evaluate_takes_more_files_than_the_parsers_default(
    make_service: Callable[..., ServiceHandle],
) -> None:
    count = 1_200  # Starlette's own default stops at 1,000
    with make_service().client() as client:
        enrolled = client.post("/gallery", data={"identity": "p1"}, files=files("e", GOOD))
        assert enrolled.status_code == 201
        labels = '["p1"' + ',"p1"' * (count - 1) + "]"
        images = [("images", (f"q{i}.png", tiny_png(i), "image/png")) for i in range(count)]
        accepted = client.post("/evaluate", data={"identities": labels}, files=images)
        assert accepted.status_code == 202, accepted.text


@pytest.mark.parametrize("route", ["/evaluate", "/gallery"])
def test_each_route_counts_files_against_its_own_setting(
    make_service: Callable[..., ServiceHandle], route: str
) -> None:
    setting = "REID_ZIP_MAX_FILES" if route == "/evaluate" else "REID_MAX_FILES_PER_REQUEST"
    with make_service(zip_max_files=3, max_files_per_request=2).client() as client:
        images = [("images", (f"q{i}.png", tiny_png(i), "image/png")) for i in range(4)]
        data = {"identities": '["a","a","a","a"]'} if route == "/evaluate" else {"identity": "a"}
        error = assert_error(client.post(route, data=data, files=images), 413, "too_many_files")
        limit = 3 if route == "/evaluate" else 2
        assert error["details"] == {"limit": limit, "setting": setting}
