"""Training objectives: identity, batch-hard triplet, pair verification, attention uniformity."""

from model.losses.criterion import LossWeights, ReIDCriterion
from model.losses.identity import LabelSmoothingCrossEntropy
from model.losses.triplet import BatchHardTripletLoss
from model.losses.uniformity import AttentionUniformityLoss
from model.losses.verification import PairVerificationLoss

__all__ = [
    "AttentionUniformityLoss",
    "BatchHardTripletLoss",
    "LabelSmoothingCrossEntropy",
    "LossWeights",
    "PairVerificationLoss",
    "ReIDCriterion",
]
