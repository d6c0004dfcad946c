import pytest
import torch

from model.attention import SpatialAttention
from model.config import ModelConfig
from model.network import ReIDNet, build_model


def _build(**overrides: object) -> ReIDNet:
    torch.manual_seed(0)
    config = ModelConfig(**{"arch": "resnet18", "num_classes": 7, **overrides})
    return build_model(config).eval()


@pytest.mark.parametrize("attention", ["both", "spatial", "channel", "none"])
def test_output_shapes_per_attention_mode(attention: str, images: torch.Tensor) -> None:
    model = _build(attention=attention)
    with torch.no_grad():
        out = model(images)
    assert out.embedding.shape == (2, 512)
    assert out.feature.shape == (2, 512)
    assert out.logits.shape == (2, 7)
    if attention in ("both", "spatial"):
        assert out.spatial_attention is not None
        assert out.spatial_attention.shape == (2, 1, 16, 8)  # layer3 map of 256x128
    else:
        assert out.spatial_attention is None
    if attention in ("both", "channel"):
        assert out.channel_attention is not None
        assert out.channel_attention.shape == (2, 256, 1, 1)  # layer3 channels of resnet18
    else:
        assert out.channel_attention is None


def test_resnet50_forward() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=5)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 256, 128))
    assert out.embedding.shape == (2, 2048)
    assert out.logits.shape == (2, 5)
    assert out.spatial_attention is not None and out.spatial_attention.shape == (2, 1, 16, 8)
    assert out.channel_attention is not None and out.channel_attention.shape == (2, 1024, 1, 1)


def test_none_is_the_plain_baseline_without_attention_parameters() -> None:
    plain = _build(attention="none")
    assert plain.attention is None
    assert not any("attention" in name for name, _ in plain.named_parameters())
    with_attention = _build(attention="both")
    assert sum(p.numel() for p in with_attention.parameters()) > sum(
        p.numel() for p in plain.parameters()
    )


@pytest.mark.parametrize(("last_stride", "size"), [(1, (16, 8)), (2, (8, 4))])
def test_last_stride_sets_layer4_map_size(last_stride: int, size: tuple[int, int]) -> None:
    model = _build(last_stride=last_stride)
    with torch.no_grad():
        layer4 = model.backbone(torch.randn(1, 3, 256, 128))
    assert layer4.shape[-2:] == size


def test_attention_maps_lie_in_unit_interval_and_start_unsaturated(images: torch.Tensor) -> None:
    model = _build(attention="both")
    with torch.no_grad():
        out = model(images * 10)
    for mask in (out.spatial_attention, out.channel_attention):
        assert mask is not None
        assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0
        # A fresh mask near 0.5 passes gradient; a saturated one (0 or 1) would not.
        assert 0.2 < float(mask.mean()) < 0.8


def test_odd_layer3_map_comes_back_at_its_own_size() -> None:
    model = _build(attention="spatial")
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 112))  # layer3 map 14x7
    assert out.spatial_attention is not None
    assert out.spatial_attention.shape == (1, 1, 14, 7)


@pytest.mark.parametrize("head", ["bnneck", "two_fc"])
def test_embedding_is_unit_norm_and_embed_agrees(head: str, images: torch.Tensor) -> None:
    model = _build(head=head)
    with torch.no_grad():
        out = model(images)
        embedded = model.embed(images)
    assert torch.allclose(out.embedding.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(embedded, out.embedding, atol=1e-6)


def test_bnneck_bias_is_frozen() -> None:
    model = _build()
    assert not model.neck.bn.bias.requires_grad
    assert model.neck.bn.weight.requires_grad


@pytest.mark.parametrize("combination", ["residual", "multiplicative"])
def test_training_step_reaches_attention_and_head(combination: str) -> None:
    model = _build(head="two_fc", attention_combination=combination).train()
    out = model(torch.randn(4, 3, 128, 64))
    assert out.spatial_attention is not None
    loss = out.logits.logsumexp(dim=1).mean() + out.feature.pow(2).mean()
    loss = loss + out.spatial_attention.mean()
    loss.backward()
    assert model.attention is not None
    for module in (model.attention.spatial, model.attention.channel, model.classifier):
        assert module is not None
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
        assert any(float(g.abs().sum()) > 0 for g in grads if g is not None)


def test_the_spatial_mask_follows_the_content_not_the_position() -> None:
    """Moving a pattern on layer3's map moves its mask with it, unchanged.

    A mask that can encode position (a strided bottleneck, zero padding) can learn one
    fixed map for every crop; this one is computed from each place's neighbourhood.
    """
    torch.manual_seed(0)
    attention = SpatialAttention(64)
    torch.nn.init.normal_(attention.score.weight, std=1.0)  # a trained-like, visible mask
    pattern = torch.rand(64, 3, 3) * 4

    def mask_with_pattern_at(row: int, column: int) -> torch.Tensor:
        features = torch.zeros(1, 64, 24, 16)
        features[0, :, row : row + 3, column : column + 3] = pattern
        with torch.no_grad():
            return attention(features)[0, 0]

    here, there = mask_with_pattern_at(4, 4), mask_with_pattern_at(15, 8)
    # The pattern and the 3 cells around it that the mask can see, at both places.
    torch.testing.assert_close(here[1:10, 1:10], there[12:21, 5:14])
    assert float(here.max() - here.min()) > 0.05  # the pattern really shows in the mask
