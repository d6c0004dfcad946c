"""The collapse statistics tell a fixed mask from masks that follow each crop."""

import math

import pytest
import torch

from model.evaluation.attention_maps import mask_statistics


def _blob(row: int, column: int, size: tuple[int, int] = (16, 8)) -> torch.Tensor:
    """A mask that is 1 on a 4x3 body at (row, column) and 0.1 elsewhere."""
    mask = torch.full((1, *size), 0.1)
    mask[0, row : row + 4, column : column + 3] = 1.0
    return mask


def test_one_mask_for_every_crop_is_a_collapse() -> None:
    masks = torch.stack([_blob(5, 2)] * 20) * torch.linspace(0.5, 1.0, 20)[:, None, None, None]
    stats = mask_statistics(masks)
    assert stats.correlation_with_mean == pytest.approx(1.0)
    assert stats.flat_masks == 0
    assert stats.crops == 20


def test_masks_that_move_with_the_person_are_not() -> None:
    masks = torch.stack([_blob(row, column) for row in range(0, 12, 2) for column in (0, 3, 5)])
    stats = mask_statistics(masks)
    assert stats.correlation_with_mean < 0.6
    assert stats.spread_across_crops > 0.2


def test_flat_masks_are_counted_not_correlated() -> None:
    masks = torch.stack([torch.full((1, 16, 8), 0.3), _blob(2, 2), _blob(8, 4)])
    stats = mask_statistics(masks)
    assert stats.flat_masks == 1
    assert -1.0 <= stats.correlation_with_mean < 1.0
    only_flat = mask_statistics(torch.full((4, 1, 16, 8), 0.98))
    assert math.isnan(only_flat.correlation_with_mean)
    assert only_flat.to_dict()["correlation_with_mean"] is None  # JSON has no NaN
    assert only_flat.saturated_fraction == 1.0 and only_flat.mean == pytest.approx(0.98)


def test_only_flat_masks_are_called_a_collapse() -> None:
    """A tiny run at lr 0.01 ended with every mask exactly 0 (fp32) or 1 (bf16) on one CPU
    and healthy on another: the trainer says so rather than logging a null correlation."""
    dead = mask_statistics(torch.zeros(3, 1, 16, 8))
    assert dead.collapse is not None and "all 3 masks are flat (mean 0.00)" in dead.collapse
    one_alive = torch.zeros(3, 1, 16, 8)
    one_alive[1, 0, :8] = 0.7
    assert mask_statistics(one_alive).collapse is None


@pytest.mark.parametrize("shape", [(0, 1, 16, 8), (16, 8), (2, 1, 1, 16, 8)])
def test_bad_shapes_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="masks of shape"):
        mask_statistics(torch.zeros(shape))
