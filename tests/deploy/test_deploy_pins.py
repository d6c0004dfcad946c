"""docker/pins.py: the image installs the CI-tested pins, with only torch and FAISS swapped."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

TORCH = {"torch", "torchvision"}
# The GPU FAISS build chosen in docs/deploy.md (sm_90 kernels, CUDA 12 libraries beside
# torch's CUDA 13 ones) and the CUDA 12 wheels it loads, at the versions checked there.
GPU_FAISS = {
    "faiss-gpu": "1.15.1",
    "nvidia-cuda-runtime-cu12": "12.9.79",
    "nvidia-cublas-cu12": "12.9.1.4",
    "nvidia-curand-cu12": "10.3.10.19",
}


def _pins(repo: Path, variant: str, out: Path) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, str(repo / "docker" / "pins.py"), variant, str(out), "--root", str(repo)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {
        name: (out / name).read_text(encoding="utf-8")
        for name in ("constraints.txt", "torch.txt", "requirements.txt")
    }


def _pin_map(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


@pytest.fixture(scope="module")
def dev_pins(repo: Path) -> dict[str, str]:
    return _pin_map((repo / "constraints.txt").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("variant", "build"), [("gpu", "cu130"), ("cpu", "cpu")])
def test_only_torch_and_faiss_differ_from_the_dev_pins(
    repo: Path, tmp_path: Path, dev_pins: dict[str, str], variant: str, build: str
) -> None:
    files = _pins(repo, variant, tmp_path)
    image_pins = _pin_map(files["constraints.txt"])
    for name in TORCH:
        assert image_pins[name] == f"{dev_pins[name]}+{build}"
    changed = {name for name in dev_pins if image_pins.get(name) != dev_pins[name]} - TORCH
    added = set(image_pins) - set(dev_pins)
    if variant == "gpu":
        assert changed == {"faiss-cpu"} and "faiss-cpu" not in image_pins
        assert {name: image_pins[name] for name in added} == GPU_FAISS
    else:
        assert changed == set() and added == set()
    assert f"https://download.pytorch.org/whl/{build}" in files["torch.txt"]
    assert {_name(line) for line in files["torch.txt"].splitlines()[1:]} == TORCH


@pytest.mark.parametrize(("variant", "faiss"), [("gpu", "faiss-gpu"), ("cpu", "faiss-cpu")])
def test_requirements_are_the_runtime_dependencies_all_pinned(
    repo: Path, tmp_path: Path, variant: str, faiss: str
) -> None:
    files = _pins(repo, variant, tmp_path)
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_name(req) for req in project["dependencies"]}
    runtime |= {_name(req) for req in project["optional-dependencies"]["postgres"]}
    runtime = (runtime - {"faiss-cpu"}) | {faiss}
    required = {_name(line) for line in files["requirements.txt"].splitlines() if line}
    assert required == runtime  # no dev tools (pytest, ruff, hadolint) in the image
    pinned = set(_pin_map(files["constraints.txt"]))
    # Extras (uvicorn[standard], psycopg[binary]) resolve to pinned packages too.
    assert required | {"psycopg-binary", "uvloop", "httptools"} <= pinned


def test_bad_input_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_bytes((repo / "pyproject.toml").read_bytes())
    (root / "constraints.txt").write_text("faiss-cpu==1.15.1\ntorchvision==0.28.0\n")
    script = str(repo / "docker" / "pins.py")
    result = subprocess.run(
        [sys.executable, script, "gpu", str(tmp_path / "out"), "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "does not pin torch" in result.stderr
    unknown = subprocess.run(
        [sys.executable, script, "tpu", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


def test_the_gpu_extra_names_the_image_faiss_build(repo: Path, tmp_path: Path) -> None:
    """``pip install .[gpu]`` and the GPU image must not drift to different FAISS builds."""
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (extra,) = project["optional-dependencies"]["gpu"]
    assert _name(extra) == "faiss-gpu"
    floor = re.fullmatch(r"[A-Za-z0-9._-]+>=([0-9.]+)", extra)
    assert floor is not None, extra
    # The floor is the release whose kernels docs/deploy.md lists, and the image pins it.
    assert floor.group(1) == GPU_FAISS["faiss-gpu"]
    image_pins = _pin_map(_pins(repo, "gpu", tmp_path)["constraints.txt"])
    assert image_pins["faiss-gpu"] == GPU_FAISS["faiss-gpu"]
