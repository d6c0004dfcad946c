from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from model.backbone import PretrainedWeightsError
from model.config import ModelConfig
from model.network import build_model

CONFIG = ModelConfig(arch="resnet18", num_classes=3)


def _imagenet_resnet18() -> torchvision.models.ResNet:
    torch.manual_seed(123)
    return torchvision.models.resnet18(weights=None)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_imagenet_weights_are_loaded(tmp_path: Path, suffix: str) -> None:
    source = _imagenet_resnet18()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file(source.state_dict(), str(path))
    else:
        torch.save(source.state_dict(), path)
    model = build_model(CONFIG, pretrained=path)
    assert torch.equal(model.backbone.conv1.weight, source.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    assert torch.equal(model.backbone.layer3[0].bn1.running_var, source.layer3[0].bn1.running_var)
    # last_stride=1 is applied after loading; the weights do not change shape.
    assert model.backbone.layer4[0].conv1.stride == (1, 1)


def test_weights_of_another_arch_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    with pytest.raises(PretrainedWeightsError, match=r"not a torchvision resnet18 state_dict"):
        build_model(CONFIG, pretrained=path)


def test_partial_state_dict_is_refused(tmp_path: Path) -> None:
    state = _imagenet_resnet18().state_dict()
    del state["layer2.0.conv1.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(PretrainedWeightsError, match=r"1 missing: layer2\.0\.conv1\.weight"):
        build_model(CONFIG, pretrained=path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PretrainedWeightsError, match="not found"):
        build_model(CONFIG, pretrained=tmp_path / "nope.pth")


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"this is not a state dict" * 10)
    with pytest.raises(PretrainedWeightsError, match="cannot read"):
        build_model(CONFIG, pretrained=path)


class _Arbitrary:
    pass


def test_pickled_objects_are_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "object.pth"
    torch.save({"conv1.weight": _Arbitrary()}, path)
    with pytest.raises(PretrainedWeightsError, match="refusing"):
        build_model(CONFIG, pretrained=path)


def test_non_tensor_contents_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(PretrainedWeightsError, match="state_dict of named tensors"):
        build_model(CONFIG, pretrained=path)


def test_truncated_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.safetensors"
    save_file(_imagenet_resnet18().state_dict(), str(path))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(PretrainedWeightsError, match="cannot read"):
        build_model(CONFIG, pretrained=path)


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50"])
@pytest.mark.parametrize("release", ["IMAGENET1K_V1", "IMAGENET1K_V2"])
def test_both_torchvision_releases_load(tmp_path: Path, arch: str, release: str) -> None:
    """Generated stand-ins with the keys, shapes and file format of each release's files."""
    torch.manual_seed(7)
    source = getattr(torchvision.models, arch)(weights=None)
    state = source.state_dict()
    path = tmp_path / f"{arch}-{release}.pth"
    if release == "IMAGENET1K_V1":
        # The 2017 files: no num_batches_tracked counters, legacy (non-zip) serialisation.
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
        torch.save(state, path, _use_new_zipfile_serialization=False)
    else:
        assert any(k.endswith("num_batches_tracked") for k in state)
        torch.save(state, path)
    model = build_model(ModelConfig(arch=arch, num_classes=3), pretrained=path)
    assert torch.equal(model.backbone.conv1.weight, source.conv1.weight)
    assert torch.equal(
        model.backbone.layer4[-1].bn1.running_mean, source.layer4[-1].bn1.running_mean
    )


def test_a_v1_file_missing_a_real_tensor_is_still_refused(tmp_path: Path) -> None:
    state = {
        k: v
        for k, v in _imagenet_resnet18().state_dict().items()
        if not k.endswith("num_batches_tracked") and k != "layer2.0.bn1.running_var"
    }
    path = tmp_path / "resnet18-v1.pth"
    torch.save(state, path)
    with pytest.raises(PretrainedWeightsError, match=r"layer2\.0\.bn1\.running_var"):
        build_model(CONFIG, pretrained=path)
