"""Every benchmark still starts, and the cheap ones still measure something.

Benchmarks are run by hand, rarely, so a refactor can break one unnoticed. These checks
run each script as a user would (`python benchmarks/NAME.py`). They assert what a run
reports, never how fast it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    path.name
    for path in (REPO_ROOT / "benchmarks").glob("*.py")
    if path.name != "service_common.py"  # a helper module, not a command
)


def run_benchmark(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, f"benchmarks/{name}", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_benchmark_is_listed() -> None:
    assert "model_forward.py" in SCRIPTS and "service_query.py" in SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_starts_and_explains_itself(name: str) -> None:
    result = run_benchmark(name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


def test_model_forward_reports_a_rate() -> None:
    result = run_benchmark(
        "model_forward.py", "--arch", "resnet18", "--batch-size", "2", "--iterations", "1",
        "--warmup", "0", "--amp", "off",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["arch"] == "resnet18" and report["bf16"] is False
    assert report["images_per_second"] > 0


def test_training_throughput_reports_a_rate_and_memory() -> None:
    result = run_benchmark(
        "training_throughput.py", "--arch", "resnet18", "--last-stride", "2", "--batch-p", "2",
        "--batch-k", "2", "--warmup", "0", "--iterations", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["batch"] == "2x2=4"
    assert report["images_per_s"] > 0 and report["peak_rss_mib"] > 0


def test_a_bad_argument_is_a_usage_error() -> None:
    result = run_benchmark("model_forward.py", "--arch", "resnet9")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "Traceback" not in result.stderr


def test_reranking_reports_time_memory_and_the_dense_reference() -> None:
    result = run_benchmark("reranking.py", "--fraction", "0.01", "--dim", "32", "--with-dense")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["num_query"], report["num_gallery"]) == (34, 159)
    assert report["rerank"] == {"k1": 20, "k2": 6, "lambda": 0.3}
    assert 0.0 <= report["mAP"]["reranked"] <= 1.0
    assert report["peak_rss_mib"] > 0 and report["dense_reference_added_peak_rss_mib"] >= 0
