import logging
from pathlib import Path

import pytest
import torch
from PIL import Image

from model.evaluation.layouts.records import ImageRecord
from model.preprocessing import DEFAULT_INPUT_SIZE, InputSize, normalize_uint8
from training.data.dataset import EmptyDatasetError, ReIDImageDataset
from training.data.decoded import DecodedCropDataset
from training.transforms import build_eval_transform

EVAL = build_eval_transform(DEFAULT_INPUT_SIZE)


def _jpeg(path: Path, shade: int) -> Path:
    Image.new("RGB", (64, 128), (shade, 255 - shade, 40)).save(path, format="JPEG")
    return path


@pytest.fixture
def records(tmp_path: Path) -> list[ImageRecord]:
    """Identities 12 and 40 with two crops each, 7 with one."""
    return [
        ImageRecord(_jpeg(tmp_path / f"{pid}_{i}.jpg", 10 * pid + i), pid, camid=1 + i)
        for pid, count in ((40, 2), (12, 2), (7, 1))
        for i in range(count)
    ]


def test_items_are_preprocessed_tensors_with_relabelled_ids(records: list[ImageRecord]) -> None:
    dataset = ReIDImageDataset(records, EVAL)
    assert len(dataset) == 5
    assert dataset.num_classes == 3
    assert dataset.pid_to_label == {7: 0, 12: 1, 40: 2}
    image, label, camid = dataset[0]
    assert image.shape == (3, *DEFAULT_INPUT_SIZE)
    assert image.dtype == torch.float32
    assert (label, camid) == (2, 1)
    assert dataset.labels == [2, 2, 1, 1, 0]
    assert dataset.skipped == []


def test_evaluation_keeps_original_pids(records: list[ImageRecord]) -> None:
    dataset = ReIDImageDataset(records, EVAL, relabel=False)
    assert dataset.labels == [40, 40, 12, 12, 7]
    assert dataset[4][1] == 7


def test_custom_transform_is_applied(records: list[ImageRecord]) -> None:
    dataset = ReIDImageDataset(records, lambda image: torch.tensor(image.size))
    assert dataset[0][0].tolist() == [64, 128]


def test_unreadable_images_are_skipped_counted_and_logged(
    records: list[ImageRecord], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(records[0].path.read_bytes()[:300])
    text = tmp_path / "text.jpg"
    text.write_text("this is not an image\n")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    broken = [
        ImageRecord(truncated, 12, 1),
        ImageRecord(text, 99, 2),  # identity 99 has no readable crop at all
        ImageRecord(empty, 12, 2),
        ImageRecord(tmp_path / "missing.jpg", 12, 3),
    ]
    with caplog.at_level(logging.WARNING, logger="training.data.dataset"):
        dataset = ReIDImageDataset(records + broken, EVAL)
    assert len(dataset) == 5
    assert [s.path for s in dataset.skipped] == [truncated, text, empty, tmp_path / "missing.jpg"]
    assert "truncated" in dataset.skipped[0].reason
    assert 99 not in dataset.pid_to_label
    assert dataset.num_classes == 3
    assert "skipped 4 unreadable images of 9" in caplog.text
    assert str(truncated) in caplog.text


def test_no_usable_images_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    with pytest.raises(
        EmptyDatasetError, match=r"no usable images: 1 record\(s\) given, 1 unreadable"
    ):
        ReIDImageDataset([ImageRecord(bad, 1, 1)], EVAL)
    with pytest.raises(EmptyDatasetError, match="0 record"):
        ReIDImageDataset([], EVAL)


def test_image_broken_after_construction_is_replaced_by_same_identity(
    records: list[ImageRecord],
) -> None:
    dataset = ReIDImageDataset(records, EVAL)
    records[2].path.write_bytes(b"\xff\xd8 truncated later")
    image, label, _ = dataset[2]
    with Image.open(records[3].path) as sibling:
        expected = dataset.transform(sibling.convert("RGB"))
    assert label == dataset.labels[2]
    assert torch.equal(image, expected)
    assert [s.path for s in dataset.skipped] == [records[2].path]

    records[4].path.write_bytes(b"")  # the only crop of identity 7
    with pytest.raises(EmptyDatasetError, match="identity 7"):
        dataset[4]


@pytest.mark.parametrize("size", [DEFAULT_INPUT_SIZE, InputSize(128, 64)], ids=str)
def test_decoded_once_dataset_serves_what_the_file_path_serves(
    records: list[ImageRecord], tmp_path: Path, size: InputSize
) -> None:
    """Same items, labels, cameras and skipped files; then no file is read again."""
    text = tmp_path / "text.jpg"
    text.write_text("this is not an image\n")
    mixed = [*records, ImageRecord(text, 99, 2)]
    from_files = ReIDImageDataset(mixed, build_eval_transform(size))
    decoded = DecodedCropDataset(mixed, size, normalize_uint8)
    assert decoded.crops.dtype == torch.uint8
    assert decoded.crops.shape == (5, 3, *size)
    assert [s.path for s in decoded.skipped] == [s.path for s in from_files.skipped] == [text]
    assert (decoded.labels, decoded.camids) == (from_files.labels, from_files.camids)
    expected = [from_files[index] for index in range(len(from_files))]
    for record in records:
        record.path.unlink()
    for index, (image, label, camid) in enumerate(expected):
        got_image, got_label, got_camid = decoded[index]
        assert torch.equal(got_image, image)
        assert (got_label, got_camid) == (label, camid)
