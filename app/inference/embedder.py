"""Load the embedding network once and run it the fastest way the host allows.

Where bf16 is native (CUDA, or a CPU with AVX512-BF16/AMX) the network runs
channels_last under bf16 autocast (`model.compute`, REID_AMP); the embedding is
re-normalised in float32 so cosine scores stay exact inner products whatever
precision the forward used. With no checkpoint configured, a deterministic
untrained network is served and flagged everywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.settings import Settings
from model.checkpoint import ModelCard, load_checkpoint, untrained_model
from model.compute import ComputeSettings
from model.network import ReIDNet

log = logging.getLogger(__name__)

UNTRAINED_WARNING = (
    "no checkpoint configured (REID_MODEL_PATH): serving an UNTRAINED network; its "
    "rankings are meaningless. Train one with `python -m training.run` and point "
    "REID_MODEL_PATH at its best/ directory."
)


def select_device(setting: str) -> torch.device:
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("REID_DEVICE=cuda but no CUDA device is available")
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


@dataclass
class Embedder:
    """The loaded network plus how to call it; ``embed`` is only called by the batcher thread."""

    network: ReIDNet
    card: ModelCard
    compute: ComputeSettings
    checkpoint: Path | None

    @property
    def device(self) -> torch.device:
        return self.compute.device

    @property
    def version(self) -> str:
        return self.card.version

    @property
    def dim(self) -> int:
        return self.card.embedding_dim

    @property
    def trained(self) -> bool:
        return self.card.trained

    def embed(self, batch: torch.Tensor) -> np.ndarray:
        """(N, 3, H, W) preprocessed crops -> (N, D) float32 unit vectors."""
        with torch.inference_mode(), self.compute.autocast():
            embedding = self.network.embed(self.compute.to_device(batch))
        embedding = F.normalize(embedding.float(), dim=1)
        return embedding.cpu().numpy().astype(np.float32, copy=False)

    def describe(self) -> dict[str, Any]:
        """The model card plus how this process serves it."""
        return {
            **self.card.to_dict(),
            "device": str(self.device),
            "bf16": self.compute.bf16,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "warning": None if self.trained else UNTRAINED_WARNING,
        }


def load_embedder(settings: Settings) -> Embedder:
    compute = ComputeSettings.resolve(select_device(settings.device), settings.amp, settings.amp)
    if settings.model_path is not None:
        network, card = load_checkpoint(settings.model_path, map_location="cpu")
        log.info("loaded checkpoint %s (version %s)", settings.model_path, card.version)
    else:
        network, card = untrained_model()
        log.warning(UNTRAINED_WARNING)
    compute.prepare(network).eval()
    log.info(
        "model %s (%s, %d-d, trained=%s) on %s, bf16=%s",
        card.version,
        card.config.arch,
        card.embedding_dim,
        card.trained,
        compute.device,
        compute.bf16,
    )
    return Embedder(network=network, card=card, compute=compute, checkpoint=settings.model_path)
