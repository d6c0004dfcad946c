"""Turn batches of preprocessed crops into retrieval embeddings for evaluation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from model.compute import ComputeSettings

if TYPE_CHECKING:
    from model.network import ReIDNet


def extract_features(
    network: ReIDNet,
    batches: Iterable[torch.Tensor],
    *,
    compute: ComputeSettings,
    flip: bool = False,
    spatial_masks: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Embed every image of ``batches`` (each (B, 3, H, W)); returns (N, D) float32 on the CPU.

    The network is moved and laid out as ``compute`` says and run in eval mode under
    ``inference_mode`` (its previous train/eval mode is restored afterwards).

    ``flip`` adds the embedding of the horizontally mirrored crop before re-normalising:
    a pedestrian seen from the left is the same person seen from the right, and this
    test-time augmentation averages out the network's left/right asymmetries.

    With a ``spatial_masks`` list, the same forward pass also appends each batch's
    spatial attention (B, 1, h, w) of the unflipped crops, as float32 on the CPU, so
    judging the attention costs no second pass over the images.
    """
    was_training = network.training
    compute.prepare(network).eval()
    embeddings: list[torch.Tensor] = []
    try:
        with torch.inference_mode(), compute.autocast():
            for batch in batches:
                if batch.ndim != 4:
                    raise ValueError(
                        f"expected image batches of shape (B, 3, H, W), got {tuple(batch.shape)}"
                    )
                images = compute.to_device(batch)
                if spatial_masks is None:
                    embedding = network.embed(images).float()
                else:
                    output = network(images)
                    if output.spatial_attention is None:
                        raise ValueError("the network has no spatial attention")
                    spatial_masks.append(output.spatial_attention.float().cpu())
                    embedding = output.embedding.float()
                if flip:
                    embedding = embedding + network.embed(images.flip(3)).float()
                embeddings.append(F.normalize(embedding, dim=1).cpu())
    finally:
        network.train(was_training)
    if not embeddings:
        raise ValueError("no image batches were given, so there is nothing to embed")
    return torch.cat(embeddings)
