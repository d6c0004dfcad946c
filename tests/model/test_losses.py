import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from model.config import ModelConfig
from model.losses import (
    AttentionUniformityLoss,
    BatchHardTripletLoss,
    LabelSmoothingCrossEntropy,
    LossWeights,
    PairVerificationLoss,
    ReIDCriterion,
)
from model.network import ReIDOutput, build_model

# --- identity ------------------------------------------------------------------------


def test_label_smoothing_matches_the_formula() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    log_p = logits.log_softmax(dim=1)[0]
    expected = -(0.9 * log_p[0] + 0.1 / 3 * log_p.sum())
    loss = LabelSmoothingCrossEntropy(0.1)(logits, torch.tensor([0]))
    assert math.isclose(loss.item(), float(expected), rel_tol=1e-6)


def test_zero_smoothing_is_plain_cross_entropy() -> None:
    logits = torch.randn(5, 4)
    targets = torch.tensor([0, 1, 2, 3, 0])
    loss = LabelSmoothingCrossEntropy(0.0)(logits, targets)
    assert torch.allclose(loss, F.cross_entropy(logits, targets))


def test_label_smoothing_rejects_bad_epsilon() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        LabelSmoothingCrossEntropy(1.0)


# --- triplet ---------------------------------------------------------------------------


def test_batch_hard_mining_picks_farthest_positive_and_nearest_negative() -> None:
    # 1-D points: identity 0 at 0, 1, 3; identity 1 at 4 and 10.
    features = torch.tensor([[0.0], [1.0], [3.0], [4.0], [10.0]])
    pids = torch.tensor([0, 0, 0, 1, 1])
    d_ap, d_an, pos_idx, neg_idx = BatchHardTripletLoss().mine(features, pids)
    assert pos_idx.tolist() == [2, 2, 0, 4, 3]
    assert neg_idx.tolist() == [3, 3, 3, 2, 2]
    assert torch.allclose(d_ap, torch.tensor([3.0, 2.0, 3.0, 6.0, 6.0]), atol=1e-4)
    assert torch.allclose(d_an, torch.tensor([4.0, 3.0, 1.0, 1.0, 7.0]), atol=1e-4)


def test_triplet_loss_value_by_hand() -> None:
    features = torch.tensor([[0.0], [1.0], [3.0], [4.0], [10.0]])
    pids = torch.tensor([0, 0, 0, 1, 1])
    loss = BatchHardTripletLoss(margin=0.3)(features, pids)
    # hinge(d_ap - d_an + 0.3) per anchor: 0, 0, 2.3, 5.3, 0
    assert math.isclose(loss.item(), (2.3 + 5.3) / 5, rel_tol=1e-4)


def test_triplet_ignores_anchors_without_positive_or_negative() -> None:
    features = torch.tensor([[0.0, 0.0], [0.0, 1.0], [5.0, 0.0]], requires_grad=True)
    pids = torch.tensor([0, 0, 1])  # anchor 2 has no positive
    loss = BatchHardTripletLoss(margin=0.3)(features, pids)
    assert math.isclose(loss.item(), 0.0, abs_tol=1e-6)  # d_ap 1 vs d_an 5: satisfied
    single_identity = BatchHardTripletLoss()(features, torch.tensor([0, 0, 0]))
    assert single_identity.item() == 0.0
    single_identity.backward()
    assert features.grad is not None


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 10.0))
def test_triplet_invariants(seed: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(12, 8, generator=generator)
    pids = torch.arange(4).repeat_interleave(3)
    loss = BatchHardTripletLoss(margin=0.0)
    value = loss(features, pids)
    assert value.item() >= 0.0
    # Rigid motions preserve distances; permuting the batch permutes anchors.
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    moved = features @ rotation + 3.0
    assert torch.allclose(loss(moved, pids), value, atol=1e-4)
    order = torch.randperm(12, generator=generator)
    assert torch.allclose(loss(features[order], pids[order]), value, atol=1e-5)
    # With margin 0 the loss is homogeneous of degree 1 in the features.
    assert torch.allclose(loss(features * scale, pids), value * scale, rtol=1e-3, atol=1e-5)


# --- uniformity ------------------------------------------------------------------------


def test_uniformity_is_zero_for_identical_maps_of_an_identity() -> None:
    maps = torch.rand(2, 1, 4, 2).repeat_interleave(2, dim=0)  # [a, a, b, b]
    pids = torch.tensor([5, 5, 9, 9])
    assert AttentionUniformityLoss()(maps, pids).item() == 0.0


def test_uniformity_is_mean_l1_over_same_identity_pairs() -> None:
    maps = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2), torch.full((1, 2, 2), 0.5)])
    pids = torch.tensor([1, 1, 2])  # only pair (0, 1): |0 - 1| = 1; the other id is ignored
    assert math.isclose(AttentionUniformityLoss()(maps, pids).item(), 1.0)
    pids = torch.tensor([1, 1, 1])  # pairs: 1, 0.5, 0.5
    assert math.isclose(AttentionUniformityLoss()(maps, pids).item(), 2.0 / 3.0, rel_tol=1e-6)


def test_uniformity_without_pairs_is_zero() -> None:
    maps = torch.rand(3, 1, 4, 2, requires_grad=True)
    loss = AttentionUniformityLoss()(maps, torch.tensor([1, 2, 3]))
    assert loss.item() == 0.0
    loss.backward()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_uniformity_bounded_and_order_free(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    maps = torch.rand(8, 1, 4, 2, generator=generator)
    pids = torch.randint(0, 3, (8,), generator=generator)
    loss = AttentionUniformityLoss()
    value = loss(maps, pids)
    assert 0.0 <= value.item() <= 1.0
    order = torch.randperm(8, generator=generator)
    assert torch.allclose(loss(maps[order], pids[order]), value, atol=1e-6)


# --- verification ----------------------------------------------------------------------


def test_verification_classifier_receives_gradients_and_learns() -> None:
    torch.manual_seed(0)
    centres = F.normalize(torch.randn(4, 16), dim=1)
    pids = torch.arange(4).repeat_interleave(4)
    embeddings = F.normalize(centres[pids] + 0.05 * torch.randn(16, 16), dim=1)
    loss_fn = PairVerificationLoss(16)
    initial = loss_fn(embeddings, pids)
    assert math.isclose(initial.item(), math.log(2), rel_tol=0.05)  # starts undecided
    initial.backward()
    assert loss_fn.classifier.weight.grad is not None
    assert float(loss_fn.classifier.weight.grad.abs().sum()) > 0
    optimiser = torch.optim.Adam(loss_fn.parameters(), lr=0.05)
    for _ in range(100):
        optimiser.zero_grad()
        loss = loss_fn(embeddings, pids)
        loss.backward()
        optimiser.step()
    assert loss_fn(embeddings, pids).item() < 0.5 * initial.item()


def test_verification_passes_gradient_to_embeddings() -> None:
    embeddings = torch.randn(6, 8, requires_grad=True)
    loss = PairVerificationLoss(8)(embeddings, torch.tensor([0, 0, 1, 1, 2, 2]))
    loss.backward()
    assert embeddings.grad is not None and float(embeddings.grad.abs().sum()) > 0


def test_pair_logits_are_symmetric() -> None:
    loss_fn = PairVerificationLoss(8)
    a, b = torch.randn(3, 8), torch.randn(3, 8)
    assert torch.allclose(loss_fn.pair_logits(a, b), loss_fn.pair_logits(b, a))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_verification_is_order_free_and_positive(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    loss_fn = PairVerificationLoss(4)
    embeddings = torch.randn(9, 4, generator=generator)
    pids = torch.randint(0, 3, (9,), generator=generator)
    value = loss_fn(embeddings, pids)
    assert value.item() > 0
    order = torch.randperm(9, generator=generator)
    assert torch.allclose(loss_fn(embeddings[order], pids[order]), value, atol=1e-6)


# --- criterion -------------------------------------------------------------------------

TERMS = {"identity", "triplet", "verification", "uniformity", "total"}


def _output(attention: str = "both") -> tuple[ReIDOutput, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="resnet18", num_classes=4, attention=attention)).train()
    return model(torch.randn(8, 3, 64, 32)), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])


def test_criterion_total_is_the_weighted_sum() -> None:
    output, pids = _output()
    weights = LossWeights(identity=1.0, triplet=2.0, verification=0.5, uniformity=3.0)
    criterion = ReIDCriterion(4, 512, weights)
    total, values = criterion(output, pids)
    assert set(values) == TERMS
    expected = sum(values[name] * getattr(weights, name) for name in TERMS - {"total"})
    assert math.isclose(values["total"], expected, rel_tol=1e-5)
    assert math.isclose(total.item(), expected, rel_tol=1e-5)
    assert values["uniformity"] > 0
    total.backward()
    assert criterion.verification.classifier.weight.grad is not None


def test_zero_weight_and_missing_attention_contribute_nothing_but_are_reported() -> None:
    output, pids = _output(attention="channel")
    criterion = ReIDCriterion(4, 512, LossWeights(verification=0.0))
    total, values = criterion(output, pids)
    assert set(values) == TERMS
    assert values["uniformity"] == 0.0
    assert values["verification"] == 0.0
    assert math.isclose(total.item(), values["identity"] + values["triplet"], rel_tol=1e-5)


def test_criterion_has_the_verification_parameters() -> None:
    names = [name for name, _ in ReIDCriterion(4, 512).named_parameters()]
    assert names == ["verification.classifier.weight", "verification.classifier.bias"]


def test_criterion_rejects_class_count_mismatch() -> None:
    output, pids = _output()
    with pytest.raises(ValueError, match="classes"):
        ReIDCriterion(10, 512)(output, pids)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "1"])
def test_loss_weights_validated(bad: object) -> None:
    with pytest.raises(ValueError, match="triplet"):
        LossWeights(triplet=bad)  # type: ignore[arg-type]


def test_triplet_distances_stay_float32_under_bf16_autocast() -> None:
    features = torch.randn(8, 64) * 10
    pids = torch.arange(4).repeat_interleave(2)
    expected = BatchHardTripletLoss().mine(features, pids)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = BatchHardTripletLoss().mine(features, pids)[0]
    assert got.dtype == torch.float32
    assert torch.allclose(got, expected, rtol=1e-4)


def test_the_hinge_penalises_a_constant_mask_and_the_l1_does_not() -> None:
    pids = torch.tensor([0, 0, 1, 1])
    constant = torch.full((4, 1, 4, 2), 0.5)
    assert float(AttentionUniformityLoss("l1")(constant, pids)) == 0.0
    assert float(AttentionUniformityLoss("hinge")(constant, pids)) == pytest.approx(0.3)
    # Masks that agree within an identity and differ across: the hinge is satisfied.
    distinct = torch.zeros(4, 1, 4, 2)
    distinct[:2, :, :2] = 1.0
    distinct[2:, :, 2:] = 1.0
    assert float(AttentionUniformityLoss("hinge")(distinct, pids)) == 0.0


def test_the_hinge_is_the_hardest_triplet_per_anchor_and_passes_gradient() -> None:
    torch.manual_seed(3)
    maps = torch.rand(6, 1, 4, 2, requires_grad=True)
    pids = torch.tensor([0, 0, 1, 1, 2, 2])
    loss = AttentionUniformityLoss("hinge", margin=0.2)(maps, pids)
    flat = maps.detach().flatten(1)
    expected = []
    for a in range(6):
        d = (flat[a] - flat).abs().mean(dim=1)
        same = (pids == pids[a]) & (torch.arange(6) != a)
        expected.append(max(float(d[same].max() - d[pids != pids[a]].min()) + 0.2, 0.0))
    assert float(loss) == pytest.approx(sum(expected) / 6, abs=1e-6)
    loss.backward()
    assert maps.grad is not None and float(maps.grad.abs().sum()) > 0


def test_an_unknown_uniformity_form_is_refused() -> None:
    with pytest.raises(ValueError, match="uniformity form"):
        AttentionUniformityLoss("l2")
