from pathlib import Path

import pytest
from dataset_fixtures import (
    cuhk03_fixture,
    duke_fixture,
    folder_fixture,
    market_fixture,
    msmt17_fixture,
    write_crop,
)

from model.evaluation.layouts.catalogue import LAYOUT_NAMES, detect_layout, read_layout
from model.evaluation.layouts.records import DatasetLayoutError

FIXTURES = {
    "market": market_fixture,
    "duke": duke_fixture,
    "msmt17": msmt17_fixture,
    "folder": folder_fixture,
}


def test_every_layout_is_listed() -> None:
    assert set(LAYOUT_NAMES) == {
        "market",
        "duke",
        "msmt17",
        "cuhk03-detected",
        "cuhk03-labeled",
        "folder",
    }


@pytest.mark.parametrize("layout", sorted(FIXTURES))
def test_layouts_are_detected_and_read(tmp_path: Path, layout: str) -> None:
    root = FIXTURES[layout](tmp_path)
    assert detect_layout(root) == layout
    assert read_layout(layout, root).layout == layout


def test_one_cuhk03_variant_is_detected_and_both_are_ambiguous(tmp_path: Path) -> None:
    root = cuhk03_fixture(tmp_path)
    with pytest.raises(DatasetLayoutError, match="cuhk03-detected or cuhk03-labeled"):
        detect_layout(root)
    (root / "labeled" / "query").rename(root / "labeled" / "probe")
    assert detect_layout(root) == "cuhk03-detected"


def test_a_cuhk03_variant_folder_is_not_taken_for_market(tmp_path: Path) -> None:
    root = cuhk03_fixture(tmp_path)
    with pytest.raises(DatasetLayoutError, match=r"one CUHK03-NP variant folder.*cuhk03-labeled"):
        detect_layout(root / "labeled")


def test_nothing_recognisable_is_an_error(tmp_path: Path) -> None:
    write_crop(tmp_path / "0001.jpg")
    with pytest.raises(DatasetLayoutError, match="none of the known layouts"):
        detect_layout(tmp_path)


def test_unknown_layout_name(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match="unknown dataset layout 'viper'"):
        read_layout("viper", tmp_path)


def test_wrong_layout_is_refused(tmp_path: Path) -> None:
    root = market_fixture(tmp_path)
    with pytest.raises(DatasetLayoutError, match="not an MSMT17 folder"):
        read_layout("msmt17", root)
    with pytest.raises(DatasetLayoutError, match="not a CUHK03-NP folder"):
        read_layout("cuhk03-detected", root)
