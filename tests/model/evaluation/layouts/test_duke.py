from pathlib import Path

import pytest
from dataset_fixtures import duke_fixture, market_fixture

from model.evaluation.layouts.duke import load_dukemtmc, parse_duke_filename
from model.evaluation.layouts.records import DatasetLayoutError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0001_c2_f0046182.jpg", (1, 2)),
        ("7140_c8_f0178065.JPG", (7140, 8)),
        ("0001_c9_f0046182.jpg", None),  # DukeMTMC has cameras 1-8
        ("0001_c0_f0046182.jpg", None),
        ("0002_c1s1_000451_03.jpg", None),  # Market-1501 naming
        ("-1_c2_f0046182.jpg", None),  # no junk in DukeMTMC
        ("0001_c2_0046182.jpg", None),
        ("1_c2_f0046182.jpg", None),
    ],
)
def test_parse_duke_names(name: str, expected: tuple[int, int] | None) -> None:
    assert parse_duke_filename(name) == expected


def test_duke_fixture_reads_all_splits(tmp_path: Path) -> None:
    splits = load_dukemtmc(duke_fixture(tmp_path))
    assert splits.layout == "duke"
    assert [(r.pid, r.camid) for r in splits.train] == [(1, 2), (1, 5), (3, 1), (3, 8)]
    assert [(r.pid, r.camid) for r in splits.query] == [(5, 1), (6, 3)]
    assert {r.pid for r in splits.gallery} == {5, 6, 9}
    assert (splits.junk, splits.not_images) == (0, 0)


def test_market_folder_is_not_duke(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"not named like DukeMTMC-reID crops.*f0046182"):
        load_dukemtmc(market_fixture(tmp_path))


def test_missing_split_names_the_layout(tmp_path: Path) -> None:
    root = duke_fixture(tmp_path)
    (root / "query").rename(root / "probe")
    with pytest.raises(DatasetLayoutError, match="not a DukeMTMC-reID folder: missing query"):
        load_dukemtmc(root)
