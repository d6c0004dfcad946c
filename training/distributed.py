"""Multi-GPU training through ``torchrun``: process-group setup and batch sharding.

``torchrun --nproc-per-node N -m training.run ...`` sets WORLD_SIZE/RANK/
LOCAL_RANK; with WORLD_SIZE > 1 each process joins an NCCL (or Gloo on CPU)
group, trains on its own share of the identity batches (the P×K sampler plans
each epoch from the seed alone, so ranks agree without communicating), and only
rank 0 writes checkpoints, metrics and plots. A plain ``python -m training.run`` is a world of
one and none of this code does anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device_type: str) -> DistributedContext:
    """Join the process group described by torchrun's environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world_size)


def shutdown(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    if context.enabled:
        dist.barrier()


def all_reduce_sum(
    values: list[float], context: DistributedContext, device: torch.device
) -> list[float]:
    """Sum per-rank statistics (loss sums, image counts) across the world."""
    if not context.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()
