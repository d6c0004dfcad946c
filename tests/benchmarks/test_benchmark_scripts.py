"""Every benchmark still starts, and the cheap ones still measure something.

Benchmarks are run by hand, rarely, so a refactor can break one unnoticed. These checks
run each script as a user would (`python benchmarks/NAME.py`). They assert what a run
reports, never how fast it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    path.name
    for path in (REPO_ROOT / "benchmarks").glob("*.py")
    if path.name != "service_common.py"  # a helper module, not a command
)


def _write_people_features(
    path: Path, query_pids: np.ndarray, gallery_pids: np.ndarray, *, seed: int
) -> Callable[[np.ndarray], np.ndarray]:
    """A features file of generated people (a random centre each, plus per-crop noise; a
    distractor pid 0 or junk -1 looks like nobody in particular); returns the crop maker."""
    from training.feature_files import write_feature_file

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(64, 16))  # pids 0 .. 63

    def crops(pids: np.ndarray) -> np.ndarray:
        features = centres[np.abs(pids)] + rng.normal(scale=0.6, size=(len(pids), 16))
        return (features / np.linalg.norm(features, axis=1, keepdims=True)).astype(np.float32)

    write_feature_file(
        path,
        {
            "query_features": crops(query_pids),
            "gallery_features": crops(gallery_pids),
            "query_pids": query_pids,
            "gallery_pids": gallery_pids,
            "query_camids": np.ones_like(query_pids),
            "gallery_camids": np.full_like(gallery_pids, 2),
        },
    )
    return crops


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


def test_gpu_acceptance_runs_every_check_at_toy_size_on_the_cpu(tmp_path: Path) -> None:
    """The GPU command's code paths, at toy sizes, so they cannot rot between GPU runs."""
    summary_path = tmp_path / "acceptance.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_acceptance.py", "--device", "cpu", "--quick",
         "--output", str(summary_path), "--work-dir", str(tmp_path / "work")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    summary = json.loads(summary_path.read_text())
    checks = summary["checks"]
    assert result.returncode == 0, json.dumps(checks, indent=1) + result.stderr[-3000:]
    assert summary["passed"] is True
    assert list(checks) == ["train", "train_step_speed", "ddp", "evaluator", "service", "onnx"]
    # faiss-cpu and onnxruntime are installed here, so nothing may be skipped.
    assert {name: check["status"] for name, check in checks.items()} == dict.fromkeys(
        checks, "passed"
    )
    train = checks["train"]
    assert (
        len(train["loss_per_epoch"]) == 3
        and min(train["loss_per_epoch"][1:]) < train["loss_per_epoch"][0]
    )
    assert checks["train_step_speed"]["compile_on"]["compile"] == "eager"
    assert checks["ddp"]["relative_difference"] <= checks["ddp"]["tolerance"]
    assert checks["evaluator"]["tiny"]["max_gap_to_cpu"] <= 1e-4
    service = checks["service"]
    assert service["index_gpu"] == {
        "requested": True,
        "used": False,
        "reason": "no FAISS GPU build or no visible GPU",
    }
    assert set(service["enroll"]) == {"2"} and service["enroll"]["2"]["ratio"] > 0
    assert service["query"]["queries"] == 5
    # torchvision wheels without their image extension cannot decode; that is reported.
    assert service["jpeg_decode"].get("images") == 4 or "skipped" in service["jpeg_decode"]
    assert checks["onnx"]["max_abs_difference"] <= 1e-4
    assert summary["commit"] and summary["machine"]["device"] == "cpu"


def test_attention_silhouette_scores_masks_against_the_drawn_people(tmp_path: Path) -> None:
    from model.checkpoint import save_checkpoint, untrained_model
    from model.config import ModelConfig

    config = ModelConfig(arch="resnet18", num_classes=3, input_height=128, input_width=64)
    network, _ = untrained_model(config)
    save_checkpoint(network, tmp_path / "net", training_data={}, metrics={})
    result = run_benchmark(
        "attention_silhouette.py", "--checkpoint", str(tmp_path / "net"), "--identities", "3"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["crops"] == 12 and report["mask_grid"] == [8, 4]
    assert 0.0 <= report["iou"] <= 1.0 and 0.0 <= report["iou_fixed_mean_mask"] <= 1.0
    assert report["mask_statistics"]["crops"] == 12


def test_open_set_market_reports_every_size_and_target(tmp_path: Path) -> None:
    import dataclasses

    from model.checkpoint import read_model_card, save_checkpoint, untrained_model, write_model_card
    from model.config import ModelConfig
    from model.evaluation.labelled_calibration import calibrate_labelled_set

    query_pids, gallery_pids = np.repeat(np.arange(1, 21), 2), np.repeat(np.arange(1, 21), 3)
    crops = _write_people_features(tmp_path / "features.npz", query_pids, gallery_pids, seed=0)
    calibration_pids = np.repeat(np.arange(20, 60), 4)
    calibration = calibrate_labelled_set(crops(calibration_pids), calibration_pids, seed=0)
    network, _ = untrained_model(ModelConfig(arch="resnet18", num_classes=2))
    save_checkpoint(network, tmp_path / "net", training_data={}, metrics={})
    card = read_model_card(tmp_path / "net")
    write_model_card(tmp_path / "net", dataclasses.replace(card, calibration=calibration))
    result = run_benchmark(
        "open_set_market.py",
        *("--checkpoint", str(tmp_path / "net"), "--features", str(tmp_path / "features.npz")),
        *("--sizes", "5,15", "--seeds", "0,1"),
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["gallery_identities"], row["target_fpir"]) for row in rows] == [
        (size, target) for size in (5, 15) for target in (0.1, 0.01, 0.001)
    ]
    assert all(0.0 <= row["observed_fpir"] <= 1.0 and row["seeds"] == 2 for row in rows)
    assert rows[0]["nonmated_probes"] == 30  # 15 withheld identities x 2 queries
    bad = run_benchmark(
        "open_set_market.py",
        "--checkpoint",
        str(tmp_path / "net"),
        "--features",
        str(tmp_path / "features.npz"),
        "--sizes",
        "20",
    )
    assert bad.returncode == 2 and "--sizes: 20" in bad.stderr


def test_calibration_crossval_checks_every_repeat_on_people_it_never_saw(tmp_path: Path) -> None:
    query_pids = np.repeat(np.arange(1, 61), 2)
    gallery_pids = np.concatenate([np.repeat(np.arange(1, 61), 3), [0, 0, -1]])
    _write_people_features(tmp_path / "features.npz", query_pids, gallery_pids, seed=1)
    flags = ("--features", str(tmp_path / "features.npz"), "--calibration-identities", "30")
    result = run_benchmark("calibration_crossval.py", *flags, "--sizes", "5,20", "--repeats", "3")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    per_repeat = [row for row in rows if "summary" not in row]
    assert len(per_repeat) == 3 * 2 * 3  # repeats x sizes x targets
    summaries = [row for row in rows if "summary" in row]
    assert [(row["gallery_identities"], row["target_fpir"]) for row in summaries] == [
        (size, target) for size in (5, 20) for target in (0.001, 0.01, 0.1)
    ]
    for row in summaries:
        assert row["within_2x"] + row["above_2x"] + row["below_half"] == row["repeats"] == 3
    too_big = run_benchmark("calibration_crossval.py", *flags, "--sizes", "30")
    assert too_big.returncode == 2 and "cannot give 30" in too_big.stderr
