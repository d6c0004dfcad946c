"""ONNX export of a network that lives on the device, checked against PyTorch on the CPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acceptance.common import CheckFailed, Sizes, Skipped
from model.checkpoint import untrained_model
from model.config import ModelConfig
from model.export import INPUT_NAME, export_onnx

TOLERANCE = 1e-4  # unit-length embeddings, float32 on both sides


def onnx_parity(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    network, _ = untrained_model(ModelConfig(arch=sizes.arch))
    network = network.to(device).eval()
    try:
        path = export_onnx(network, work / "model.onnx")  # a CPU copy; `network` stays put
    except ModuleNotFoundError as missing:  # a torch whose exporter needs a package not here
        raise Skipped(f"the ONNX exporter needs {missing.name}, which is not installed") from None
    if next(network.parameters()).device.type != device.type:
        raise CheckFailed("exporting moved the caller's network off its device")
    if importlib.util.find_spec("onnxruntime") is None:
        raise Skipped(f"exported {path.stat().st_size} bytes; onnxruntime is not installed")
    import onnxruntime

    images = torch.randn(
        3, 3, *network.config.input_size, generator=torch.Generator().manual_seed(0)
    )
    with torch.inference_mode():
        expected = network.cpu().embed(images).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {INPUT_NAME: images.numpy()})
    gap = float(np.abs(actual - expected).max())
    if gap > TOLERANCE:
        raise CheckFailed(f"ONNX and PyTorch embeddings differ by up to {gap:.2e}")
    return {"onnx_bytes": path.stat().st_size, "batch": 3, "max_abs_difference": gap}
