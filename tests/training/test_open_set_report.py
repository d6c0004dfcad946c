"""python -m training.evaluate --open-set, and the report it is built from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.evaluation.labelled_calibration import calibrate_labelled_set
from training.evaluate import main
from training.open_set_report import open_set_report

DIM = 24


def _people(identities: int, images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings scattered around one random centre per identity."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, DIM))
    pids = np.repeat(np.arange(1, identities + 1), images)
    features = centres[pids - 1] + rng.normal(scale=0.9, size=(len(pids), DIM))
    return (features / np.linalg.norm(features, axis=1, keepdims=True)).astype(np.float32), pids


def _benchmark(identities: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """One query (camera 1) and two gallery crops (camera 2) per identity, plus distractors."""
    features, pids = _people(identities, 3, seed)
    query = np.arange(0, len(pids), 3)
    gallery = np.setdiff1d(np.arange(len(pids)), query)
    distractors, _ = _people(5, 1, seed + 1)
    return {
        "query_features": features[query],
        "gallery_features": np.vstack([features[gallery], distractors]),
        "query_pids": pids[query],
        "gallery_pids": np.concatenate([pids[gallery], np.zeros(5, dtype=np.int64)]),
        "query_camids": np.ones(len(query), dtype=np.int64),
        "gallery_camids": np.full(len(gallery) + 5, 2, dtype=np.int64),
    }


def test_cli_reports_operating_points_and_draws_the_plots(tmp_path: Path, capsys) -> None:
    features = tmp_path / "features.npz"
    np.savez(features, **_benchmark())
    plots = tmp_path / "plots"
    plots.mkdir()
    argv = ["--features", str(features), "--open-set", "--open-set-plots", str(plots)]
    assert main([*argv, "--seed", "3", "--withheld-fraction", "0.25"]) == 0
    report = json.loads(capsys.readouterr().out)["open_set"]
    assert report["gallery_identities"] == 300  # 400 minus the withheld quarter; no distractors
    assert report["nonmated_probes"] == 100 and report["mated_probes"] == 300
    points = {p["target_fpir"]: p for p in report["operating_points"]}
    assert points[0.1]["fpir"] <= 0.1 and points[0.01]["fpir"] <= 0.01
    assert points[0.001]["threshold"] is None  # 100 non-mated probes cannot resolve 0.1%
    assert points[0.1]["dir_rank1"] == pytest.approx(1 - points[0.1]["fnir"])
    assert points[0.1]["fnir"] <= points[0.01]["fnir"]
    assert report["calibrated"] is None  # a features file has no model card
    for name in ("det.png", "open_set_scores.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibrated_thresholds_keep_their_promise_on_a_fresh_gallery() -> None:
    """Calibrate on other people from the same population, then check on the benchmark:
    the plain fit (the default) within 2x either way at 10%, and the 0.9 envelope
    stricter than it, never letting through more than twice the promised rate."""
    features, pids = _people(600, 3, seed=7)
    benchmark = _benchmark(identities=1200, seed=8)
    checked = {}
    for confidence in (None, 0.9):
        calibration = calibrate_labelled_set(features, pids, seed=1, confidence=confidence)
        report = open_set_report(
            benchmark, withheld_fraction=0.5, seed=0, calibration=calibration, plot_dir=None
        )
        checked[confidence] = {p["target_fpir"]: p for p in report["calibrated"]}
    plain, enveloped = checked[None], checked[0.9]
    assert plain[0.1]["resolvable"] and plain[0.01]["resolvable"]
    assert 0.5 <= plain[0.1]["observed_over_target"] <= 2.0
    for target in (0.1, 0.01):
        assert enveloped[target]["observed_fpir"] <= plain[target]["observed_fpir"]
        assert enveloped[target]["observed_fpir"] <= 2 * target


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seed", "1"], "--seed only applies with --open-set"),
        (["--withheld-fraction", "0.3"], "--withheld-fraction only applies with --open-set"),
        (["--open-set", "--open-set-plots", "/nonexistent/plots"], "does not exist"),
        (["--open-set", "--withheld-fraction", "1.5"], "--open-set: the withheld fraction"),
    ],
)
def test_usage_errors(tmp_path: Path, extra: list[str], message: str, capsys) -> None:
    features = tmp_path / "features.npz"
    np.savez(features, **_benchmark(identities=20))
    assert main(["--features", str(features), *extra]) == 2
    assert message in capsys.readouterr().err


def test_a_single_identity_gallery_is_a_usage_error(tmp_path: Path, capsys) -> None:
    arrays = _benchmark(identities=20)
    one = arrays["gallery_pids"] == 1
    arrays = {**arrays, **{key: arrays[key][one] for key in ("gallery_features", "gallery_pids",
                                                             "gallery_camids")}}  # fmt: skip
    features = tmp_path / "features.npz"
    np.savez(features, **arrays)
    assert main(["--features", str(features), "--open-set"]) == 2
    assert "at least 2 identities" in capsys.readouterr().err
