"""The build context: heavy and secret paths stay out, everything COPY needs gets in.

There is no Docker engine in CI, so this applies .dockerignore with the rules of
Docker's own matcher (moby/patternmatcher): patterns are cleaned and anchored at the
context root, `*` and `?` stop at `/`, `**` spans directories, a pattern matching a
parent directory matches everything below it, `!` re-includes, the last match wins.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from pathlib import Path

import pytest


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = "^"
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":
                    i += 1
                out += ".*" if i + 1 >= len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out + "$")


class DockerIgnore:
    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            pattern = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
            self.rules.append((exclusion, _pattern_regex(pattern)))

    def excludes(self, path: str) -> bool:
        parts = path.split("/")
        parents = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        matched = False
        for exclusion, regex in self.rules:
            if exclusion != matched:
                continue  # only a re-include can undo a match, only a pattern can make one
            if regex.match(path) or any(regex.match(parent) for parent in parents):
                matched = not exclusion
        return matched


@pytest.fixture(scope="module")
def ignore(repo: Path) -> DockerIgnore:
    return DockerIgnore((repo / ".dockerignore").read_text(encoding="utf-8"))


def test_matcher_follows_docker_rules() -> None:
    rules = DockerIgnore("*\n!app/\n**/__pycache__\ndata\n*.md\n!README.md\n")
    assert rules.excludes("runs/x/model.safetensors")
    assert not rules.excludes("app/main.py")
    assert rules.excludes("app/__pycache__/main.cpython-311.pyc")
    assert rules.excludes("notes.md")
    assert not rules.excludes("README.md")
    anchored = DockerIgnore("data\n")
    assert anchored.excludes("data/market/0001_c1s1_000001_00.jpg")
    assert not anchored.excludes("training/data/synthetic.py")


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".git/objects/pack/pack-1.pack",
        "runs/cpu-synthetic/best/model.safetensors",
        "data/Market-1501/bounding_box_train/0002_c1s1_000451_03.jpg",
        "reid-data/crops/1.jpg",
        "reid-data/reid.db",
        ".whl/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "torchvision-0.28.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        ".pytest_cache/v/cache/nodeids",
        ".ruff_cache/0.17.6/123",
        ".hypothesis/examples/ab",
        "app/__pycache__/main.cpython-312.pyc",
        "model/weights.safetensors",
        "training/checkpoint.pt",
        "model/export/reid.onnx",
        "reid.egg-info/PKG-INFO",
        ".env",
        "docker/.env",
        "tests/app/test_api.py",
        "benchmarks/bench_search.py",
        "docs/benchmarks.md",
    ],
)
def test_heavy_and_secret_paths_are_excluded(ignore: DockerIgnore, path: str) -> None:
    assert ignore.excludes(path), f"{path} would be sent to the Docker daemon"


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "constraints.txt",
        "README.md",
        "alembic.ini",
        "alembic/env.py",
        "alembic/versions/0001_gallery_and_jobs.py",
        "app/main.py",
        "model/network.py",
        "training/run.py",
        "training/data/synthetic.py",
        "training/presets/market1501-resnet50.toml",
        "docker/entrypoint.sh",
        "docker/pins.py",
        "docker/.env.example",
    ],
)
def test_sources_are_included(ignore: DockerIgnore, path: str) -> None:
    assert not ignore.excludes(path)


def _copy_sources(dockerfile: str) -> list[str]:
    """Build-context sources of every COPY without --from, with line continuations joined."""
    sources: list[str] = []
    for line in dockerfile.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True) if line.strip() else []
        if not words or words[0].upper() != "COPY":
            continue
        args = [word for word in words[1:] if not word.startswith("--")]
        if any(word.startswith("--from") for word in words[1:]):
            continue
        sources.extend(args[:-1])
    return sources


def test_everything_the_dockerfile_copies_is_in_the_context(
    repo: Path, ignore: DockerIgnore
) -> None:
    sources = _copy_sources((repo / "Dockerfile").read_text(encoding="utf-8"))
    assert "app/" in sources and "docker/" in sources
    for source in sources:
        path = repo / source
        assert path.exists(), f"COPY {source}: not in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        kept = [f for f in files if not ignore.excludes(f.relative_to(repo).as_posix())]
        assert kept, f"COPY {source}: .dockerignore leaves nothing of it in the context"
        if path.is_file():
            assert kept == [path], f"COPY {source}: excluded by .dockerignore"
