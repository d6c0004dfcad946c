"""GET /whoami: the caller's key name and role, so a client can hide what it may not do."""

from __future__ import annotations

from collections.abc import Callable

from service_kit import ServiceHandle, assert_error

from app.api.auth import hash_key

KEYS = {role: f"reid_whoami_key_for_{role}_0123456789abcdef" for role in ("read", "write", "admin")}
CONFIG = [{"name": f"{role}-ops", "role": role, "sha256": hash_key(k)} for role, k in KEYS.items()]
REMOTE = ("198.51.100.7", 4321)


def test_each_key_is_told_its_name_and_role(make_service: Callable[..., ServiceHandle]) -> None:
    with make_service(api_keys=CONFIG).client(client=REMOTE) as client:
        for role, key in KEYS.items():
            for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
                response = client.get("/whoami", headers=headers)
                assert response.status_code == 200, response.text
                assert response.json() == {
                    "name": f"{role}-ops",
                    "role": role,
                    "auth_enabled": True,
                }
        missing = assert_error(client.get("/whoami"), 401, "unauthenticated")
        assert "API key is required" in missing["message"]
        wrong = client.get("/whoami", headers={"X-API-Key": "reid_not_a_key"})
        assert_error(wrong, 401, "invalid_api_key")


def test_without_keys_the_local_operator_is_admin(service: ServiceHandle) -> None:
    with service.client() as client:
        response = client.get("/whoami")
        assert response.status_code == 200
        assert response.json() == {
            "name": "local (authentication disabled)",
            "role": "admin",
            "auth_enabled": False,
        }
    with service.client(client=REMOTE) as remote:
        assert_error(remote.get("/whoami"), 403, "remote_access_disabled")
