"""Joint training: several datasets' identities and cameras kept apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixtures import duke_fixture, folder_fixture

from model.evaluation.layouts.records import ImageRecord
from training import distributed
from training.config import from_mapping
from training.data.joint import combine_training_sets
from training.data.synthetic import generate_synthetic_market
from training.loaders import build_data_pipeline


def _records(*pid_cams: tuple[int, int]) -> list[ImageRecord]:
    return [ImageRecord(Path(f"{pid}_{cam}.jpg"), pid, cam) for pid, cam in pid_cams]


def test_later_datasets_are_shifted_past_earlier_ones() -> None:
    combined, parts = combine_training_sets(
        [
            ("market", Path("m"), _records((2, 1), (1501, 6))),
            ("duke", Path("d"), _records((2, 1), (7140, 8))),
            ("folder", Path("f"), _records((1, 0), (2, 3))),
        ]
    )
    assert [(r.pid, r.camid) for r in combined] == [
        (2, 1),
        (1501, 6),  # the first dataset keeps its numbers
        (1504, 7),
        (8642, 14),
        (8644, 0),  # unknown camera stays unknown
        (8645, 17),
    ]
    assert [(p.pid_offset, p.camera_offset) for p in parts] == [(0, 0), (1502, 6), (8643, 14)]
    assert [(p.images, p.identities) for p in parts] == [(2, 2), (2, 2), (2, 2)]
    pids_by_dataset = [{r.pid for r in combined[i : i + 2]} for i in (0, 2, 4)]
    assert not set.intersection(*pids_by_dataset)


def test_junk_in_a_training_set_is_refused() -> None:
    with pytest.raises(ValueError, match="junk"):
        combine_training_sets([("market", Path("m"), _records((-1, 1)))])


def test_pipeline_trains_on_every_dataset_and_evaluates_the_first(tmp_path: Path) -> None:
    market = generate_synthetic_market(
        tmp_path / "market",
        num_train_ids=3,
        num_test_ids=2,
        num_cameras=2,
        images_per_id_per_camera=1,
        seed=0,
    )
    duke, folders = duke_fixture(tmp_path / "duke"), folder_fixture(tmp_path / "folders")
    config = from_mapping(
        {
            "data_dir": [str(market), str(duke), str(folders)],
            "layout": ["market", "duke", "folder"],
            "output_dir": str(tmp_path / "run"),
            "batch_p": 2,
            "batch_k": 2,
            "workers": 0,
        }
    )
    data = build_data_pipeline(config, distributed.init_from_env("cpu"), pin_memory=False)
    assert data.num_classes == 3 + 2 + 2
    assert len(data.train_records) == 3 * 2 + 4 + 3
    assert len({(r.pid, r.camid) for r in data.train_records if r.camid}) > 0
    assert data.layout == "market+duke+folder"
    assert {r.path.parent.parent for r in data.query_records} == {market}
    described = data.describe()["datasets"]
    assert [d["layout"] for d in described] == ["market", "duke", "folder"]
    assert [d["train_identities"] for d in described] == [3, 2, 2]
    duke_pids = {r.pid for r in data.train_records if r.path.is_relative_to(duke)}
    market_pids = {r.pid for r in data.train_records if r.path.is_relative_to(market)}
    assert duke_pids.isdisjoint(market_pids)
    assert min(duke_pids) > max(market_pids)
