"""Bad input gets a precise 4xx in the one error shape, and stores nothing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from service_kit import (
    assert_error,
    encode,
    entries_of,
    files,
    person_jpeg,
    pixel_bomb_png,
    unique,
)

GOOD = person_jpeg(1, 1, 0, seed=7)


@pytest.mark.parametrize(
    ("name", "payload", "status", "code"),
    [
        ("text.jpg", b"hello, I am not an image", 422, "invalid_image"),
        ("truncated.jpg", GOOD[: len(GOOD) // 2], 422, "invalid_image"),
        ("empty.jpg", b"", 422, "empty_file"),
        ("anim.gif", encode(Image.new("RGB", (8, 16)), "GIF"), 422, "unsupported_format"),
        ("bomb.png", pixel_bomb_png(), 413, "too_many_pixels"),
    ],
)
def test_bad_image_is_refused_naming_the_file_and_nothing_is_stored(
    shared: TestClient, name: str, payload: bytes, status: int, code: str
) -> None:
    identity = unique()
    response = shared.post(
        "/gallery",
        data={"identity": identity},
        files=[
            ("images", ("good.jpg", GOOD, "image/jpeg")),
            ("images", (name, payload, "image/jpeg")),
        ],
    )
    error = assert_error(response, status, code)
    assert name in error["message"]
    assert error["details"] == {"filename": name, "index": 1}
    assert entries_of(shared, identity) == []


def test_content_type_is_ignored_formats_are_checked_by_decoding(shared: TestClient) -> None:
    image = Image.open(io.BytesIO(GOOD))
    identity = unique()
    response = shared.post(
        "/gallery",
        data={"identity": identity},
        files=[
            ("images", ("a.png", encode(image, "PNG"), "text/plain")),
            ("images", ("b.webp", encode(image, "WEBP"), "application/octet-stream")),
        ],
    )
    assert response.status_code == 201, response.text
    stored = entries_of(shared, identity)
    assert sorted(entry["image_format"] for entry in stored) == ["png", "webp"]


def test_bad_query_image(shared: TestClient) -> None:
    response = shared.post(
        "/query", files={"image": ("q.jpg", b"\xff\xd8\xff garbage", "image/jpeg")}
    )
    assert_error(response, 422, "invalid_image")


def test_oversize_file(shared: TestClient) -> None:
    big = b"\xff\xd8\xff" + bytes(2 * 1024 * 1024)
    response = shared.post(
        "/gallery", data={"identity": unique()}, files=[("images", ("big.jpg", big, "image/jpeg"))]
    )
    error = assert_error(response, 413, "file_too_large")
    assert "big.jpg" in error["message"]


def test_body_over_limit_declared_by_content_length(shared: TestClient) -> None:
    response = shared.post(
        "/gallery",
        content=b"x" * (6 * 1024 * 1024 + 1),
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert_error(response, 413, "body_too_large")


def test_body_over_limit_streamed_without_content_length(shared: TestClient) -> None:
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'--xyz\r\nContent-Disposition: form-data; name="identity"\r\n\r\nx\r\n'
        yield b'--xyz\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\n'
        yield b"Content-Type: image/jpeg\r\n\r\n"
        for _ in range(16):  # 16 MiB in 1 MiB chunks, far over the 6 MiB limit
            sent += 1
            yield b"\xff" * (1024 * 1024)
        yield b"\r\n--xyz--\r\n"

    response = shared.post(
        "/gallery",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_error(response, 413, "body_too_large")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({}, "validation_error"),  # identity missing
        ({"identity": "x" * 129}, "validation_error"),
        ({"identity": "a/b"}, "invalid_identity"),
        ({"identity": "a\\b"}, "invalid_identity"),
        ({"identity": "nul\x00byte"}, "invalid_identity"),
        ({"identity": "tab\there"}, "invalid_identity"),
        ({"identity": "rtl\u202eoverride"}, "invalid_identity"),
        ({"identity": " padded "}, "invalid_identity"),
        ({"identity": ".."}, "invalid_identity"),
        ({"identity": "ok", "metadata": "{not json"}, "invalid_metadata"),
        ({"identity": "ok", "metadata": "[1, 2]"}, "invalid_metadata"),
        ({"identity": "ok", "metadata": '{"x": NaN}'}, "invalid_metadata"),
        ({"identity": "ok", "captured_at": "yesterday"}, "validation_error"),
        ({"identity": "ok", "camera": "c/1"}, "invalid_camera"),
    ],
)
def test_bad_fields(shared: TestClient, data: dict, code: str) -> None:
    response = shared.post("/gallery", data=data, files=files("f", GOOD))
    assert_error(response, 422, code)


def test_metadata_over_limit(shared: TestClient) -> None:
    response = shared.post(
        "/gallery",
        data={"identity": unique(), "metadata": '{"note": "' + "x" * 300 + '"}'},
        files=files("f", GOOD),
    )
    assert_error(response, 413, "metadata_too_large")


def test_missing_images(shared: TestClient) -> None:
    response = shared.post("/gallery", data={"identity": unique()})
    error = assert_error(response, 422, "validation_error")
    assert any("images" in item["loc"] for item in error["details"])


@pytest.mark.parametrize(
    "identity",
    [
        "x" * 128,
        "Zoë Ångström",
        "李小龙",
        "👩‍🚀 astronaut",  # ZWJ sequence
        "Robert'); DROP TABLE gallery_entries;--",
        "100% <img src=x onerror=alert(1)>",
    ],
)
def test_accepted_identities_round_trip_exactly(shared: TestClient, identity: str) -> None:
    image = person_jpeg(3, 1, len(identity) + sum(map(ord, identity)) % 1000, seed=7)
    response = shared.post("/gallery", data={"identity": identity}, files=files("f", image))
    assert response.status_code == 201, response.text
    assert response.json()["identity"] == identity
    path = "/identities/" + quote(identity, safe="")
    detail = shared.get(path)
    assert detail.status_code == 200, detail.text
    assert detail.json()["identity"] == identity
    assert shared.delete(path).status_code == 200
    assert shared.get(path).status_code == 404


def test_identities_are_nfc_normalised(shared: TestClient) -> None:
    base = unique("cafe")
    composed, decomposed = base + "\u00e9", base + "e\u0301"
    image = person_jpeg(4, 1, 0, seed=7)
    first = shared.post("/gallery", data={"identity": decomposed}, files=files("f", image))
    assert first.status_code == 201
    assert first.json()["identity"] == composed
    again = shared.post("/gallery", data={"identity": composed}, files=files("f", image))
    assert again.json()["entries"][0]["created"] is False
    shared.delete(f"/identities/{composed}")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"top_k": "0"}, "validation_error"),
        ({"top_k": "101"}, "validation_error"),
        ({"top_k": "ten"}, "validation_error"),
        ({"expansion": "-1"}, "validation_error"),
        ({"expansion": "11"}, "validation_error"),
        ({"expansion": "2.5"}, "validation_error"),
        ({"min_score": "2"}, "validation_error"),
        ({"exclude_same_camera": "true"}, "camera_required"),
        (
            {"captured_after": "2026-01-02T00:00:00Z", "captured_before": "2026-01-01T00:00:00Z"},
            "invalid_time_window",
        ),
    ],
)
def test_bad_query_fields(shared: TestClient, data: dict, code: str) -> None:
    response = shared.post("/query", data=data, files={"image": ("q.jpg", GOOD, "image/jpeg")})
    assert_error(response, 422, code)


def test_query_needs_an_image(shared: TestClient) -> None:
    assert_error(shared.post("/query", data={"top_k": "3"}), 422, "validation_error")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/gallery/999999999", 404, "entry_not_found"),
        ("DELETE", "/gallery/999999999", 404, "entry_not_found"),
        ("GET", "/gallery/abc", 422, "validation_error"),
        ("GET", "/gallery/99999999999999999999999", 422, "validation_error"),
        ("GET", "/gallery?cursor=not-a-cursor", 422, "invalid_cursor"),
        ("GET", "/identities?cursor=eyJrIjoiZW50cnkiLCJ2IjozfQ", 422, "invalid_cursor"),
        ("GET", "/identities/nobody-here", 404, "identity_not_found"),
        ("DELETE", "/identities/nobody-here", 404, "identity_not_found"),
        ("GET", "/evaluate/nope", 404, "job_not_found"),
        ("GET", "/no/such/route", 404, "not_found"),
        ("PUT", "/gallery", 405, "method_not_allowed"),
    ],
)
def test_not_found_and_malformed_paths(
    shared: TestClient, method: str, path: str, status: int, code: str
) -> None:
    assert_error(shared.request(method, path), status, code)


def test_non_multipart_enroll_is_a_validation_error(shared: TestClient) -> None:
    response = shared.post("/gallery", json={"identity": "x"})
    assert_error(response, 422, "validation_error")
