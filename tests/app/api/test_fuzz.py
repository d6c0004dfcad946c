"""A schema-driven fuzzer over every operation of the app's own OpenAPI document.

schemathesis draws requests from /openapi.json (valid and invalid ones) and
sends them in-process, with an admin key so they reach the handlers. Any 5xx,
a status the route does not document, an error code its OpenAPI does not list
for that status (the codes are an enum per status), or a body that breaks the
response schema fails the test. The examples are derandomized (the ``ci``
hypothesis profile); ``pytest --hypothesis-profile=explore`` draws fresh ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from service_kit import LoadedModels, PostgresServer, make_settings

from app.api.auth import hash_key
from app.main import create_app
from app.settings import Settings

ADMIN_KEY = "reid_fuzz_admin_key_0123456789abcdef0123"
EXAMPLES_PER_OPERATION = 50


@pytest.fixture(scope="module")
def api_schema(
    backend: str,
    postgres: PostgresServer,
    checkpoint: Path,
    loaded_models: LoadedModels,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[schemathesis.BaseSchema]:
    directory = tmp_path_factory.mktemp(f"fuzz-{backend}")
    url = postgres.fresh_url() if backend == "postgresql" else f"sqlite:///{directory}/reid.db"
    app_settings = make_settings(
        directory / "data",
        url,
        checkpoint,
        api_keys=[{"name": "fuzz", "role": "admin", "sha256": hash_key(ADMIN_KEY)}],
    )
    app = create_app(app_settings, embedder=loaded_models.for_settings(app_settings))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield schema
    shutdown_lifespans()


# Every check that holds an answer to the document. Left out: positive_data_acceptance
# (the identity rule and image decoding cannot be written in JSON Schema, so a
# schema-valid request may rightly get 422) and ignored_auth (the admin key is sent on
# purpose; tests/app/api/test_auth.py covers refusals).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _cases() -> list[tuple[str, str, GenerationMode]]:
    """(method, path, mode) per operation; negative data only where there is input to break.

    Building the app reads no settings and starts nothing.
    """
    document = create_app(Settings()).openapi()
    cases = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_every_operation_answers_as_documented(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION // 2,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"X-API-Key": ADMIN_KEY}, checks=CHECKS)

    answers_as_documented()
