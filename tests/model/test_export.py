import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from model.config import ModelConfig
from model.export import INPUT_NAME, ONNX_OPSET, OUTPUT_NAME, export_onnx, export_torchscript
from model.network import ReIDNet, build_model


@dataclass
class Exported:
    model: ReIDNet
    onnx_path: Path
    script_path: Path
    still_training_after_export: bool


def _min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a, b, dim=1).min())


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="resnet18", num_classes=7)).train()
    with torch.no_grad():  # non-trivial BN statistics, so parity covers eval-mode BN
        model(torch.randn(4, 3, 256, 128) * 2 + 0.5)
    folder = tmp_path_factory.mktemp("export") / "nested"
    onnx_path = export_onnx(model, folder / "m.onnx")
    script_path = export_torchscript(model, folder / "m.pt")
    still_training = model.training
    return Exported(model.eval(), onnx_path, script_path, still_training)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_matches_pytorch_for_any_batch(exported: Exported, batch: int) -> None:
    model, onnx_path = exported.model, exported.onnx_path
    images = torch.randn(batch, 3, 256, 128)
    with torch.no_grad():
        expected = model.embed(images)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})
    assert got.shape == (batch, 512)
    assert _min_cosine(torch.from_numpy(got), expected) > 0.9999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_onnx_graph_is_valid_with_dynamic_batch(exported: Exported) -> None:
    graph = onnx.load(str(exported.onnx_path))
    onnx.checker.check_model(graph)
    assert graph.opset_import[0].version >= ONNX_OPSET
    batch_dim = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "batch"


@pytest.mark.parametrize("batch", [1, 3])
def test_torchscript_matches_pytorch(exported: Exported, batch: int) -> None:
    model, script_path = exported.model, exported.script_path
    images = torch.randn(batch, 3, 256, 128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(script_path))
    with torch.no_grad():
        assert _min_cosine(scripted(images), model.embed(images)) > 0.9999


def test_export_leaves_the_callers_model_in_training_mode(exported: Exported) -> None:
    # Read before the fixture switched it to eval: exporting works on a copy.
    assert exported.still_training_after_export


def test_export_takes_the_networks_own_input_size(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = ModelConfig(arch="resnet18", num_classes=7, input_height=128, input_width=64)
    model = build_model(config).eval()
    graph = onnx.load(str(export_onnx(model, tmp_path / "small.onnx")))
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [dim.dim_value for dim in dims[1:]] == [3, 128, 64]
    images = torch.randn(2, 3, 128, 64)
    session = ort.InferenceSession(str(tmp_path / "small.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})
    with torch.no_grad():
        assert _min_cosine(torch.from_numpy(got), model.embed(images)) > 0.9999
