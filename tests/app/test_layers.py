"""The layout's promises, checked from the source: imports point one way, HTTP stays in api/.

Layers, top to bottom: the entry points (main, services, CLIs), ``api``, the
domain (``gallery``, ``jobs``), then ``index``, ``inference`` and ``db``. A module
may import its own layer and the ones below it, never one above.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import app
from app.api.errors import status_of
from app.errors import ReidError
from app.jobs.errors import JobFailed

APP_DIR = Path(app.__file__).resolve().parent
LAYER_OF = {
    "api": 3,
    "gallery": 2,
    "jobs": 2,
    "index": 1,
    "inference": 1,
    "db": 1,
}
HTTP_PACKAGES = ("fastapi", "starlette")
MAX_MODULE_LINES = 400


def modules() -> list[Path]:
    return sorted(APP_DIR.rglob("*.py"))


def package_of(path: Path) -> str | None:
    """The layer folder a module lives in, or None for the top-level entry points."""
    parts = path.relative_to(APP_DIR).parts
    return parts[0] if len(parts) > 1 else None


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(APP_DIR)))
def test_imports_point_down_and_http_stays_in_api(path: Path) -> None:
    own = package_of(path)
    for name in imported(path):
        parts = name.split(".")
        if own is not None and own != "api":
            assert parts[0] not in HTTP_PACKAGES, f"{path.name} imports {name}: HTTP is api's"
        if parts[0] != "app" or len(parts) < 2 or own is None:
            continue
        target = parts[1]
        if target in LAYER_OF:
            assert LAYER_OF[target] <= LAYER_OF[own], f"{path.name} imports {name} (upward)"
        else:  # top-level modules: settings, errors and telemetry are below everything;
            # api may name the Services container it is handed
            allowed = {"settings", "errors", "telemetry"} | (
                {"services"} if own == "api" else set()
            )
            assert target in allowed, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(APP_DIR)))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path} has {lines} lines"


def all_subclasses(kind: type[ReidError]) -> set[type[ReidError]]:
    found = set()
    for sub in kind.__subclasses__():
        found |= {sub} | all_subclasses(sub)
    return found


def test_every_domain_failure_has_an_http_status_and_a_code() -> None:
    for info in pkgutil.walk_packages(app.__path__, "app."):
        importlib.import_module(info.name)  # every ReidError subclass is defined
    kinds = all_subclasses(ReidError) - {JobFailed}  # recorded on a job, never answered
    assert len(kinds) > 20
    for kind in kinds:
        error = kind("message")
        assert status_of(error) in {404, 409, 413, 422, 507}, kind.__name__
        assert error.code and error.code not in {"error"}, kind.__name__
