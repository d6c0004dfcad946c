"""Fixtures for the service tests, run on SQLite and on PostgreSQL.

Every test that takes ``backend`` (directly or through ``service``/``shared``)
runs twice: once on an SQLite file and once on PostgreSQL, in a fresh schema of a
database ``reid_test_<random>`` created for the session on the server named by
REID_TEST_POSTGRES_URL (default 127.0.0.1:5432, user postgres) and dropped at the end.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

# pytest runs with --import-mode=importlib, which puts no test folder on sys.path;
# the service tests share helpers from service_kit.py beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from service_kit import (
    LoadedModels,
    PostgresServer,
    ServiceHandle,
    known_calibration,
    make_settings,
    postgres_server_url,
)

import model  # noqa: F401
from model.checkpoint import read_model_card, save_checkpoint, untrained_model, write_model_card
from model.config import ModelConfig
from training import run as training_run


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small resnet18 checkpoint, shared by every service test."""
    directory = tmp_path_factory.mktemp("checkpoint") / "best"
    network, _card = untrained_model(ModelConfig(arch="resnet18", num_classes=16))
    save_checkpoint(network, directory, training_data={"kind": "untrained"}, metrics={})
    return directory


@pytest.fixture(scope="session")
def calibrated_checkpoint(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same weights, with the closed-form ``known_calibration`` in their model card."""
    directory = tmp_path_factory.mktemp("calibrated") / "best"
    shutil.copytree(checkpoint, directory)
    card = read_model_card(directory)
    card.calibration = known_calibration()
    write_model_card(directory, card)
    return directory


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint really trained by ``python -m training.run --preset test-tiny``.

    About a minute on 2 CPU cores, paid once per session and shared by both
    database backends; only the ranking test needs it.
    """
    output = tmp_path_factory.mktemp("trained")
    code = training_run.main(["--preset", "test-tiny", "--output-dir", str(output)])
    assert code == 0, "training the test-tiny checkpoint failed"
    return output / "best"


@pytest.fixture(scope="session")
def loaded_models() -> LoadedModels:
    return LoadedModels()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(postgres_server_url())
    yield server
    server.drop_all()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def _database_url(backend: str, postgres: PostgresServer, directory: Path) -> str:
    if backend == "postgresql":
        return postgres.fresh_url()
    return f"sqlite:///{directory / 'reid.db'}"


@pytest.fixture
def make_service(
    backend: str,
    postgres: PostgresServer,
    checkpoint: Path,
    loaded_models: LoadedModels,
    tmp_path: Path,
) -> Callable[..., ServiceHandle]:
    """Factory for a service with its own fresh database and data directory."""
    counter = iter(range(1_000_000))

    def factory(**overrides: Any) -> ServiceHandle:
        directory = tmp_path / f"service{next(counter)}"
        directory.mkdir()
        url = _database_url(backend, postgres, directory)
        overrides.setdefault("model_path", checkpoint)
        model_path = overrides.pop("model_path")
        settings = make_settings(directory / "data", url, model_path, **overrides)
        return ServiceHandle(settings, loaded_models)

    return factory


@pytest.fixture
def service(make_service: Callable[..., ServiceHandle]) -> ServiceHandle:
    return make_service()


@pytest.fixture(scope="session")
def shared(
    backend: str,
    postgres: PostgresServer,
    checkpoint: Path,
    loaded_models: LoadedModels,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    """One running service per backend for tests that only add uniquely named data."""
    directory = tmp_path_factory.mktemp(f"shared-{backend}")
    settings = make_settings(
        directory / "data",
        _database_url(backend, postgres, directory),
        checkpoint,
        max_file_bytes=2 * 1024 * 1024,
        max_files_per_request=4,
        max_body_bytes=6 * 1024 * 1024,
        max_image_pixels=4_000_000,
        max_metadata_bytes=256,
    )
    handle = ServiceHandle(settings, loaded_models)
    with handle.client() as client:
        yield client
