from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from training.sampler import IdentityBatchSampler

# 10 identities with 1..10 crops each; pids are deliberately not 0..N-1.
PIDS = [100 + pid for pid in range(10) for _ in range(pid + 1)]


def _pids_of(batch: list[int]) -> list[int]:
    return [PIDS[index] for index in batch]


def test_every_batch_is_p_identities_times_k() -> None:
    sampler = IdentityBatchSampler(PIDS, identities_per_batch=4, instances_per_identity=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        assert len(batch) == 12 == sampler.batch_size
        counts = Counter(_pids_of(batch))
        assert len(counts) == 4
        assert set(counts.values()) == {3}


def test_small_identities_are_drawn_with_replacement() -> None:
    sampler = IdentityBatchSampler(PIDS, identities_per_batch=10, instances_per_identity=4, seed=1)
    (batch,) = list(sampler)  # only one group per identity fits a 10-identity batch
    only_crop_of_100 = PIDS.index(100)
    assert batch.count(only_crop_of_100) == 4
    for pid in range(104, 110):  # identities with >= 4 crops use distinct crops
        indices = [i for i in batch if PIDS[i] == pid]
        assert len(set(indices)) == 4


def test_epoch_covers_large_identities_without_repeats() -> None:
    pids = [pid for pid in range(8) for _ in range(8)]
    sampler = IdentityBatchSampler(pids, identities_per_batch=2, instances_per_identity=4, seed=0)
    seen = [index for batch in sampler for index in batch]
    assert sorted(seen) == list(range(64))


def test_same_seed_and_epoch_repeat_other_epochs_differ() -> None:
    first = IdentityBatchSampler(PIDS, 3, 2, seed=5)
    second = IdentityBatchSampler(PIDS, 3, 2, seed=5)
    assert list(first) == list(second)
    epoch0 = list(first)
    first.set_epoch(1)
    assert list(first) != epoch0
    first.set_epoch(0)
    assert list(first) == epoch0
    assert list(IdentityBatchSampler(PIDS, 3, 2, seed=6)) != epoch0


def test_ranks_get_disjoint_equal_shares_of_one_plan() -> None:
    pids = [pid for pid in range(20) for _ in range(6)]
    full = list(IdentityBatchSampler(pids, 4, 2, seed=3))
    shards = [
        list(IdentityBatchSampler(pids, 4, 2, seed=3, rank=r, world_size=3)) for r in range(3)
    ]
    assert len({len(shard) for shard in shards}) == 1
    assert len(shards[0]) == len(full) // 3 > 0
    as_tuples = [tuple(batch) for shard in shards for batch in shard]
    assert len(as_tuples) == len(set(as_tuples))
    assert set(as_tuples) <= {tuple(batch) for batch in full}


class _Indices(Dataset[int]):
    def __len__(self) -> int:
        return len(PIDS)

    def __getitem__(self, index: int) -> int:
        return PIDS[index]


def test_works_as_dataloader_batch_sampler() -> None:
    sampler = IdentityBatchSampler(PIDS, 4, 2, seed=0)
    loader = DataLoader(_Indices(), batch_sampler=sampler)
    batches = list(loader)
    assert len(batches) == len(sampler)
    assert all(isinstance(b, torch.Tensor) and b.unique().numel() == 4 for b in batches)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"identities_per_batch": 11}, "only 10"),
        ({"identities_per_batch": 1}, "at least 2"),
        ({"instances_per_identity": 0}, "at least 1"),
        ({"rank": 2, "world_size": 2}, "rank"),
    ],
)
def test_rejects_impossible_settings(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IdentityBatchSampler(PIDS, **kwargs)
