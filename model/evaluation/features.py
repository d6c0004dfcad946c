"""Turn batches of preprocessed crops into retrieval embeddings for evaluation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from model.network import ReIDNet


def extract_features(
    model: ReIDNet,
    batches: Iterable[torch.Tensor],
    *,
    device: torch.device | str,
    flip: bool = False,
) -> torch.Tensor:
    """Embed every image of ``batches`` (each (B, 3, H, W)); returns (N, D) on the CPU.

    The model is moved to ``device`` and run in eval mode under ``inference_mode`` (its
    previous train/eval mode is restored afterwards). On CUDA it runs in bfloat16
    autocast with channels_last tensors, the fast path for convolutions on tensor cores;
    the model's weights stay in channels_last afterwards (same values, different memory
    layout). The embeddings are returned in float32 either way.

    ``flip`` adds the embedding of the horizontally mirrored crop before re-normalising:
    a pedestrian seen from the left is the same person seen from the right, and this
    test-time augmentation averages out the network's left/right asymmetries.
    """
    device = torch.device(device)
    on_cuda = device.type == "cuda"
    was_training = model.training
    model.eval().to(device)
    if on_cuda:
        model.to(memory_format=torch.channels_last)
    embeddings: list[torch.Tensor] = []
    try:
        with (
            torch.inference_mode(),
            torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=on_cuda),
        ):
            for batch in batches:
                if batch.ndim != 4:
                    raise ValueError(
                        f"expected image batches of shape (B, 3, H, W), got {tuple(batch.shape)}"
                    )
                images = batch.to(device, non_blocking=True)
                if on_cuda:
                    images = images.contiguous(memory_format=torch.channels_last)
                embedding = model.embed(images).float()
                if flip:
                    embedding = embedding + model.embed(images.flip(3)).float()
                embeddings.append(F.normalize(embedding, dim=1).cpu())
    finally:
        model.train(was_training)
    if not embeddings:
        raise ValueError("no image batches were given, so there is nothing to embed")
    return torch.cat(embeddings)
