"""Derive an image's pinned install set from the repository's constraints.txt.

constraints.txt pins the CPU development install that the test suite runs on:
``torch==2.13.0`` resolves to the local ``+cpu`` wheel and FAISS is ``faiss-cpu``.
An image needs the same pins with two swaps and nothing else:

* torch and torchvision carry the local version label of the PyTorch index they
  come from (``+cu130`` for the GPU image, ``+cpu`` for the CPU one), so pip can
  only pick that build and never PyPI's default CUDA build;
* the GPU image replaces ``faiss-cpu`` by ``faiss-gpu`` (the FAISS project's own
  build), the one PyPI FAISS wheel with Hopper (sm_90) kernels that installs next
  to torch's CUDA 13: it links the CUDA 12 runtime, cuBLAS and cuRAND from the
  ``nvidia-*-cu12`` wheels pinned below (sonames ``.so.12``, distinct from torch's
  ``.so.13``), which the CUDA 13 driver runs. docs/deploy.md has the evidence.

Every other pin is copied unchanged, so the image runs the versions CI tested.
Runs on the builder's bare interpreter, hence standard library only.

Usage (from the repository root): ``python docker/pins.py {gpu,cpu} OUT_DIR``.
Writes OUT_DIR/constraints.txt (the derived pins), OUT_DIR/torch.txt (torch and
torchvision with their index) and OUT_DIR/requirements.txt (the project's runtime
dependencies plus the ``postgres`` extra, FAISS swapped).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PYTORCH_INDEX = "https://download.pytorch.org/whl/{build}"
TORCH_PACKAGES = ("torch", "torchvision")
EXTRAS = ("postgres",)


@dataclass(frozen=True)
class Variant:
    """What one image target swaps in for the CPU development pins."""

    torch_build: str  # local version label and PyTorch index name
    faiss_pins: dict[str, str] = field(default_factory=dict)  # replaces faiss-cpu if non-empty


VARIANTS = {
    # CUDA 13.0, matching the nvidia/cuda:13.0.x base image in the Dockerfile.
    "gpu": Variant(
        torch_build="cu130",
        faiss_pins={
            "faiss-gpu": "1.15.1",
            "nvidia-cuda-runtime-cu12": "12.9.79",
            "nvidia-cublas-cu12": "12.9.1.4",
            "nvidia-curand-cu12": "10.3.10.19",
        },
    ),
    "cpu": Variant(torch_build="cpu"),
}


def normalize(name: str) -> str:
    """PEP 503 project-name normalisation, so ``Jinja2`` and ``jinja2`` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"cannot read a project name from {requirement!r}")
    return normalize(match.group(1))


def derive_constraints(lines: list[str], variant: Variant) -> list[str]:
    """The development pins with torch relabelled and, for GPU, FAISS swapped."""
    out: list[str] = []
    seen: set[str] = set()
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            out.append(line)
            continue
        name, sep, version = text.partition("==")
        if not sep:
            raise ValueError(f"constraints.txt line is not NAME==VERSION: {text!r}")
        key = normalize(name)
        seen.add(key)
        if key in TORCH_PACKAGES:
            out.append(f"{name}=={version.split('+')[0]}+{variant.torch_build}")
        elif key == "faiss-cpu" and variant.faiss_pins:
            out.extend(f"{pkg}=={pin}" for pkg, pin in variant.faiss_pins.items())
        else:
            out.append(text)
    missing = [pkg for pkg in (*TORCH_PACKAGES, "faiss-cpu") if pkg not in seen]
    if missing:
        raise ValueError(f"constraints.txt does not pin {', '.join(missing)}")
    return out


def runtime_requirements(pyproject: dict, variant: Variant) -> list[str]:
    """The project's runtime dependencies (no dev extra), FAISS swapped for GPU."""
    project = pyproject["project"]
    requirements = list(project["dependencies"])
    for extra in EXTRAS:
        requirements.extend(project["optional-dependencies"][extra])
    if variant.faiss_pins:
        faiss_gpu = next(iter(variant.faiss_pins))
        requirements = [
            faiss_gpu if requirement_name(req) == "faiss-cpu" else req for req in requirements
        ]
    return requirements


def torch_requirements(variant: Variant) -> list[str]:
    # --extra-index-url (not --index-url): torch's own dependencies such as filelock
    # keep their PyPI pins, while the local label makes torch itself index-only.
    return [
        f"--extra-index-url {PYTORCH_INDEX.format(build=variant.torch_build)}",
        *TORCH_PACKAGES,
    ]


def write_pins(variant_name: str, out_dir: Path, root: Path) -> None:
    variant = VARIANTS[variant_name]
    constraints = (root / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "constraints.txt": derive_constraints(constraints, variant),
        "torch.txt": torch_requirements(variant),
        "requirements.txt": runtime_requirements(pyproject, variant),
    }
    for filename, lines in files.items():
        (out_dir / filename).write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    args = parser.parse_args(argv)
    try:
        write_pins(args.variant, args.out_dir, args.root)
    except (OSError, ValueError, KeyError) as error:
        print(f"pins.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
