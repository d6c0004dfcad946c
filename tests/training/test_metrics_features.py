"""extract_features: eval mode, batch order, flip test-time augmentation, real network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model.compute import ComputeSettings
from model.config import ModelConfig
from model.evaluation.features import extract_features
from model.network import build_model
from model.preprocessing import preprocess_batch
from training.data.synthetic import render_person

FP32 = ComputeSettings(torch.device("cpu"))


class TinyEmbedder(nn.Module):
    """Left/right-asymmetric embedder with dropout, so eval mode and flipping both matter."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(0.5)
        self.pool = nn.AdaptiveAvgPool2d((2, 2))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.dropout(self.pool(self.conv(x)).flatten(1)), dim=1)


@pytest.fixture
def tiny() -> TinyEmbedder:
    torch.manual_seed(0)
    return TinyEmbedder()


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(5, 3, 16, 8, generator=torch.Generator().manual_seed(3))


def test_matches_eval_mode_embedding_in_order_and_restores_training_mode(
    tiny: TinyEmbedder, images: torch.Tensor
) -> None:
    tiny.train()
    features = extract_features(tiny, [images[:2], images[2:4], images[4:]], compute=FP32)
    assert tiny.training  # restored
    with torch.no_grad():
        expected = tiny.eval().embed(images)
    assert features.shape == (5, 16)
    assert features.dtype == torch.float32 and features.device.type == "cpu"
    assert not features.requires_grad
    torch.testing.assert_close(features, expected)
    torch.testing.assert_close(features.norm(dim=1), torch.ones(5))


def test_flip_averages_the_mirrored_embedding(tiny: TinyEmbedder, images: torch.Tensor) -> None:
    plain = extract_features(tiny, [images], compute=FP32)
    flipped = extract_features(tiny, [images], compute=FP32, flip=True)
    tiny.eval()
    with torch.no_grad():
        expected = F.normalize(tiny.embed(images) + tiny.embed(images.flip(3)), dim=1)
    torch.testing.assert_close(flipped, expected)
    assert not torch.allclose(flipped, plain)  # the model is not mirror-symmetric

    symmetric = images + images.flip(3)  # a mirror-symmetric crop: flipping changes nothing
    torch.testing.assert_close(
        extract_features(tiny, [symmetric], compute=FP32, flip=True),
        extract_features(tiny, [symmetric], compute=FP32),
    )


def test_no_batches_or_malformed_batches_are_errors(tiny: TinyEmbedder) -> None:
    with pytest.raises(ValueError, match="no image batches"):
        extract_features(tiny, [], compute=FP32)
    with pytest.raises(ValueError, match=r"shape \(B, 3, H, W\)"):
        extract_features(tiny, [torch.zeros(3, 16, 8)], compute=FP32)


def test_real_network_embeddings_do_not_depend_on_batching() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="resnet18", num_classes=5))
    rng = np.random.default_rng(0)
    crops = preprocess_batch(
        [render_person(pid, 1, rng) for pid in (1, 2, 3)], model.config.input_size
    )
    together = extract_features(model, [crops], compute=FP32, flip=True)
    apart = extract_features(model, [crops[:1], crops[1:]], compute=FP32, flip=True)
    assert together.shape == (3, 512)
    torch.testing.assert_close(together, apart, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(together.norm(dim=1), torch.ones(3))


def test_bf16_channels_last_embeddings_match_fp32() -> None:
    """The fast path "auto" picks on bf16-capable hosts must not change what is retrieved."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="resnet18", num_classes=5))
    rng = np.random.default_rng(0)
    crops = preprocess_batch(
        [render_person(pid, 1, rng) for pid in (1, 2, 3, 4)], model.config.input_size
    )
    fast = ComputeSettings(torch.device("cpu"), bf16=True, channels_last=True)
    reference = extract_features(model, [crops], compute=FP32)
    features = extract_features(model, [crops], compute=fast)
    assert features.dtype == torch.float32
    assert float((reference * features).sum(dim=1).min()) > 0.999
