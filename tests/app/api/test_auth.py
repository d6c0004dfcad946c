"""API keys and roles, and the refusal to serve the network without them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from service_kit import ServiceHandle, files, person_jpeg, unique

from app.api.auth import hash_key

KEYS = {role: f"reid_test_key_for_{role}_0123456789abcdef" for role in ("read", "write", "admin")}
CONFIG = [
    {"name": f"{role}-key", "role": role, "sha256": hash_key(key)} for role, key in KEYS.items()
]
IMAGE = person_jpeg(5, 1, 0, seed=11)
RunModule = Callable[..., subprocess.CompletedProcess[str]]  # the run_module fixture


@pytest.fixture
def secured(make_service: Callable[..., ServiceHandle]) -> Iterator[TestClient]:
    with make_service(api_keys=CONFIG).client(client=("198.51.100.7", 4321)) as client:
        yield client


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


def header(role: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[role]}


_shots = iter(range(1, 1_000_000))


def enroll(client: TestClient, headers: dict[str, str]) -> int:
    image = person_jpeg(5, 2, next(_shots), seed=11)
    response = client.post(
        "/gallery", data={"identity": unique()}, files=files("a", image), headers=headers
    )
    return response.status_code


def test_roles(secured: TestClient) -> None:
    # Nothing presented, or a key we never issued.
    missing = secured.get("/gallery")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthenticated"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = secured.get("/gallery", headers={"Authorization": "Bearer reid_not_a_key"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"

    # read: query and list, nothing else; both header styles work.
    assert secured.get("/gallery", headers=bearer("read")).status_code == 200
    assert secured.get("/identities", headers=header("read")).status_code == 200
    query = secured.post(
        "/query", files={"image": ("q.jpg", IMAGE, "image/jpeg")}, headers=header("read")
    )
    assert query.status_code == 200
    assert enroll(secured, bearer("read")) == 403
    denied = secured.delete("/identities/someone", headers=header("read"))
    assert denied.status_code == 403
    assert denied.json()["error"]["details"] == {"role": "read", "required": "write"}

    # write: enroll and delete, and everything read can do; not evaluate.
    assert enroll(secured, header("write")) == 201
    assert secured.get("/gallery", headers=header("write")).status_code == 200
    assert secured.post("/evaluate", headers=bearer("write")).status_code == 403

    # admin: everything (422 = past authentication, the request itself is empty).
    assert secured.post("/evaluate", headers=bearer("admin")).status_code == 422
    assert enroll(secured, bearer("admin")) == 201
    assert secured.get("/model", headers=header("admin")).status_code == 200


def test_operations_endpoints_need_no_key(secured: TestClient) -> None:
    assert secured.get("/health").status_code == 200
    assert secured.get("/ready").status_code == 200
    assert secured.get("/metrics").status_code == 200
    assert secured.get("/model").status_code == 401


def test_without_keys_only_loopback_clients_are_served(service: ServiceHandle) -> None:
    with service.client(client=("203.0.113.9", 1234)) as remote:
        refused = remote.get("/gallery")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "remote_access_disabled"
        assert "REID_API_KEYS" in refused.json()["error"]["message"]
        assert remote.get("/health").status_code == 403
        for address in ("127.0.0.1", "::1", "127.8.9.10"):
            local = TestClient(remote.app, client=(address, 1234))  # same running app
            assert local.get("/gallery").status_code == 200
    opened = service.with_settings(allow_unauthenticated=True)
    with opened.client(client=("203.0.113.9", 1234)) as remote:
        assert remote.get("/gallery").status_code == 200


def test_keys_cli_prints_a_working_key_and_config_line(
    make_service: Callable[..., ServiceHandle], run_module: RunModule
) -> None:
    result = run_module("app.keys", "new", "--role", "write", "--name", "cam-ops")
    assert result.returncode == 0, result.stderr
    lines = dict(
        line.split(": ", 1) for line in result.stdout.splitlines() if not line.startswith(" ")
    )
    key = lines["key"]
    config = lines["config"]
    assert config.startswith("REID_API_KEYS='") and config.endswith("'")
    entries = json.loads(config[len("REID_API_KEYS='") : -1])
    assert entries == [{"name": "cam-ops", "role": "write", "sha256": hash_key(key)}]
    assert key not in config
    with make_service(api_keys=entries).client() as client:
        assert enroll(client, {"Authorization": f"Bearer {key}"}) == 201
        assert client.post("/evaluate", headers={"X-API-Key": key}).status_code == 403

    rehashed = run_module("app.keys", "hash", "--role", "read", "--name", "x", stdin=key + "\n")
    assert hash_key(key) in rehashed.stdout
    bad = run_module("app.keys", "new", "--role", "owner", "--name", "x")
    assert bad.returncode == 2


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.org"])
def test_launcher_refuses_open_network_without_keys(host: str, run_module: RunModule) -> None:
    result = run_module("app", env={"REID_HOST": host, "REID_PORT": "1"})
    assert result.returncode == 2
    assert "without API keys" in result.stderr
    assert "REID_ALLOW_UNAUTHENTICATED" in result.stderr


def test_launcher_reports_bad_configuration(run_module: RunModule) -> None:
    result = run_module("app", env={"REID_PORT": "not-a-port"})
    assert result.returncode == 2
    assert "port" in result.stderr


def _call_without_body(
    client: TestClient, method: str, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], int]:
    """Send only a request head to the running app; the body is never available."""
    reads = 0
    started: dict[str, object] = {}

    async def receive() -> dict[str, object]:
        nonlocal reads
        reads += 1
        raise AssertionError("the body was read")

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)

    head = {"content-length": str(200 * 1024**2), "content-type": "multipart/form-data; boundary=x"}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {**head, **headers}.items()],
        "client": ("198.51.100.7", 4321),
        "server": ("testserver", 80),
        "state": {},
    }
    client.portal.call(client.app, scope, receive, send)  # type: ignore[union-attr]
    raw = started.get("headers", [])
    response_headers = {k.decode(): v.decode() for k, v in raw}  # type: ignore[union-attr]
    return int(started["status"]), response_headers, reads  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("POST", "/evaluate", {}, 401, "unauthenticated"),
        ("POST", "/gallery", {"X-API-Key": "reid_not_a_key"}, 401, "invalid_api_key"),
        ("POST", "/evaluate", {"Authorization": f"Bearer {KEYS['write']}"}, 403, "forbidden"),
        ("POST", "/gallery", {"X-API-Key": KEYS["read"]}, 403, "forbidden"),
        ("POST", "/query", {}, 401, "unauthenticated"),
    ],
)
def test_refused_before_the_body_is_read(
    secured: TestClient, method: str, path: str, headers: dict[str, str], status: int, code: str
) -> None:
    answered, response_headers, reads = _call_without_body(secured, method, path, headers)
    assert (answered, reads) == (status, 0)
    assert response_headers["connection"] == "close"
    if status == 401:
        assert response_headers["www-authenticate"] == "Bearer"
    errors = secured.get("/metrics").text
    assert f'reid_errors_total{{code="{code}"}}' in errors


def test_anonymous_file_floods_get_401_not_a_limit(secured: TestClient) -> None:
    flood = files("f", *([IMAGE] * 1001))
    anonymous = secured.post("/gallery", data={"identity": "x"}, files=flood)
    assert anonymous.status_code == 401
    read_only = secured.post(
        "/gallery", data={"identity": "x"}, files=flood, headers=header("read")
    )
    assert read_only.status_code == 403
