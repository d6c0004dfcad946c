"""ONNX and TorchScript exports of the retrieval embedding.

Both take a preprocessed batch (N, 3, H, W) at the network's input size, with any N,
and return the L2-normalised embedding (N, D): the same contract as ``ReIDNet.embed``, so a
deployment can swap PyTorch for onnxruntime or libtorch without touching the
gallery.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from model.network import ReIDNet

ONNX_OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAME = "embedding"


class EmbeddingModel(nn.Module):
    """Exposes ``embed`` as ``forward``: exporters trace ``forward`` only."""

    def __init__(self, network: ReIDNet) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.embed(images)


def _export_copy(network: ReIDNet) -> EmbeddingModel:
    # A CPU, eval-mode copy: exporting must not flip the caller's network out of training.
    return EmbeddingModel(copy.deepcopy(network).cpu().eval())


@contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Silence warnings that are expected for this graph.

    Tracing turns shapes read in Python into constants, which is right because the
    crop size is fixed (the network's ``config.input_size``) and only the batch
    varies. The deprecation notices (legacy ONNX exporter, TorchScript) say
    nothing about this graph.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _example_batch(network: ReIDNet, batch_size: int = 2) -> torch.Tensor:
    return torch.randn(batch_size, 3, *network.config.input_size)


def export_onnx(network: ReIDNet, path: Path) -> Path:
    """Write an ONNX graph with a dynamic batch axis."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _export_copy(network)
    # dynamo=False: the dynamo exporter (torch's default) needs onnxscript, which
    # is not installed; the TorchScript-based exporter handles this static graph.
    with _quiet_tracing():
        torch.onnx.export(
            wrapper,
            (_example_batch(network),),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return path


def export_torchscript(network: ReIDNet, path: Path) -> Path:
    """Write a traced TorchScript module; tracing fixes the crop size, not the batch size."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _export_copy(network)
    with torch.no_grad(), _quiet_tracing():
        traced = torch.jit.trace(wrapper, (_example_batch(network),))
    traced.save(str(path))
    return path
