"""P×K identity batches: what the batch-hard triplet loss needs to see.

Batch-hard mining only works if every batch holds several crops of each of
several identities, so batches are built as P identities × K crops each instead
of uniformly. The whole epoch is planned from ``(seed, epoch)`` alone, so every
DDP rank computes the same plan and takes a disjoint, equally long share of it
without any communication.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class IdentityBatchSampler(Sampler[list[int]]):
    """Yield lists of dataset indices, each exactly P identities × K indices.

    Use as ``DataLoader(dataset, batch_sampler=IdentityBatchSampler(dataset.labels))``
    and call ``set_epoch(epoch)`` before each epoch. Each identity's crops are
    shuffled and cut into groups of K (a remainder smaller than K is left for a
    later epoch's shuffle); an identity with fewer than K crops contributes one
    group drawn with replacement. Batches are then filled with P groups of distinct
    identities until fewer than P identities have groups left.
    """

    def __init__(
        self,
        pids: Sequence[int],
        identities_per_batch: int = 16,
        instances_per_identity: int = 4,
        seed: int = 0,
        *,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if identities_per_batch < 2:
            raise ValueError(
                f"identities_per_batch must be at least 2 (a triplet needs a negative), "
                f"got {identities_per_batch}"
            )
        if instances_per_identity < 1:
            raise ValueError(
                f"instances_per_identity must be at least 1, got {instances_per_identity}"
            )
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world {world_size}")
        by_identity: dict[int, list[int]] = {}
        for index, pid in enumerate(pids):
            by_identity.setdefault(int(pid), []).append(index)
        if len(by_identity) < identities_per_batch:
            raise ValueError(
                f"{identities_per_batch} identities per batch requested but the data has only "
                f"{len(by_identity)}; lower identities_per_batch"
            )
        self._groups = [np.asarray(by_identity[pid]) for pid in sorted(by_identity)]
        self.identities_per_batch = identities_per_batch
        self.instances_per_identity = instances_per_identity
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._plan_cache: tuple[int, list[list[int]]] | None = None

    @property
    def batch_size(self) -> int:
        return self.identities_per_batch * self.instances_per_identity

    def set_epoch(self, epoch: int) -> None:
        """Choose which epoch's plan to follow; the same epoch always gives the same batches."""
        self.epoch = epoch

    def _plan(self) -> list[list[int]]:
        """All batches of the current epoch, before sharding across ranks."""
        if self._plan_cache is not None and self._plan_cache[0] == self.epoch:
            return self._plan_cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        k = self.instances_per_identity
        chunks: list[list[list[int]]] = []
        for indices in self._groups:
            if len(indices) < k:
                chosen = rng.choice(indices, size=k, replace=True)
                chunks.append([chosen.tolist()])
                continue
            shuffled = rng.permutation(indices)
            usable = len(shuffled) - len(shuffled) % k
            chunks.append([shuffled[i : i + k].tolist() for i in range(0, usable, k)])
        batches: list[list[int]] = []
        available = [i for i, identity_chunks in enumerate(chunks) if identity_chunks]
        while len(available) >= self.identities_per_batch:
            picked = rng.choice(available, size=self.identities_per_batch, replace=False)
            batch: list[int] = []
            for identity in picked:
                batch.extend(chunks[identity].pop())
            batches.append(batch)
            available = [i for i in available if chunks[i]]
        self._plan_cache = (self.epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._plan()
        per_rank = len(batches) // self.world_size
        yield from batches[self.rank : per_rank * self.world_size : self.world_size]

    def __len__(self) -> int:
        return len(self._plan()) // self.world_size
