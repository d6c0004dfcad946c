"""Which batch entries share an identity: the masks every pairwise loss starts from."""

from __future__ import annotations

import torch


def identity_masks(pids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) boolean (B, B) masks; positives exclude an image paired with itself."""
    same = pids[:, None] == pids[None, :]
    eye = torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    return same & ~eye, ~same


def pairwise_euclidean(features: torch.Tensor) -> torch.Tensor:
    """(B, B) distances; the clamp keeps sqrt's gradient finite where a distance is 0.

    Computed in float32 even under bf16 autocast: the expanded form subtracts
    large, nearly equal numbers, and bf16 would scramble which pair is hardest.
    """
    with torch.autocast(device_type=features.device.type, enabled=False):
        features = features.float()
        norms = features.pow(2).sum(dim=1)
        squared = norms[:, None] + norms[None, :] - 2.0 * features @ features.T
        return squared.clamp(min=1e-12).sqrt()
