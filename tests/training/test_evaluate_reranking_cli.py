"""python -m training.evaluate --rerank / --aqe: the same numbers as the library, usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.evaluation.metrics import compute_reid_metrics
from model.evaluation.reranking import KReciprocalSettings
from training.evaluate import main


def write_features(path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    pids = rng.integers(0, 8, 70)
    features = (rng.normal(size=(8, 10))[pids] + rng.normal(size=(70, 10))).astype(np.float32)
    cams = rng.integers(0, 3, 70)
    arrays = {
        "query_features": features[:20],
        "gallery_features": features[20:],
        "query_pids": pids[:20],
        "gallery_pids": pids[20:],
        "query_camids": cams[:20],
        "gallery_camids": cams[20:],
    }
    np.savez(path, **arrays)
    return arrays


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict | None, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, json.loads(captured.out) if status == 0 else None, captured.err


def test_rerank_defaults_are_the_papers_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arrays = write_features(tmp_path / "f.npz")
    status, report, _ = run(capsys, "--features", str(tmp_path / "f.npz"), "--rerank")
    assert status == 0 and report is not None
    expected = compute_reid_metrics(*arrays.values(), rerank=KReciprocalSettings())
    assert {key: report[key] for key in expected.to_dict()} == expected.to_dict()
    assert report["rerank"] == {"k1": 20, "k2": 6, "lambda": 0.3}
    assert report["aqe"] is None


def test_tuned_rerank_with_query_expansion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arrays = write_features(tmp_path / "f.npz")
    status, report, _ = run(
        capsys, "--features", str(tmp_path / "f.npz"), "--metric", "euclidean", "--aqe", "3",
        "--rerank", "--rerank-k1", "7", "--rerank-k2", "2", "--rerank-lambda", "0.5",
    )  # fmt: skip
    assert status == 0 and report is not None
    settings = KReciprocalSettings(k1=7, k2=2, lambda_value=0.5)
    expected = compute_reid_metrics(
        *arrays.values(), metric="euclidean", rerank=settings, query_expansion=3
    )
    assert report["mAP"] == expected.mAP and report["cmc"] == expected.cmc
    assert report["rerank"] == {"k1": 7, "k2": 2, "lambda": 0.5}
    assert report["aqe"] == {"k": 3}


def test_without_postprocessing_the_fields_are_null(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_features(tmp_path / "f.npz")
    status, report, _ = run(capsys, "--features", str(tmp_path / "f.npz"))
    assert status == 0 and report is not None
    assert report["rerank"] is None and report["aqe"] is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--rerank", "--rerank-lambda", "1.5"], "expected a number in [0, 1], got '1.5'"),
        (["--rerank", "--rerank-lambda", "nan"], "expected a number in [0, 1], got 'nan'"),
        (["--rerank", "--rerank-k1", "0"], "expected a positive integer, got 0"),
        (["--rerank-k2", "3"], "--rerank-k2 only applies with --rerank"),
        (["--aqe", "two"], "expected a positive integer, got 'two'"),
        (["--aqe", "51"], "query expansion K=51 needs at least 51 gallery items"),
    ],
)
def test_bad_values_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    write_features(tmp_path / "f.npz")
    status, _, stderr = run(capsys, "--features", str(tmp_path / "f.npz"), *options)
    assert status == 2
    assert message in stderr and "Traceback" not in stderr
