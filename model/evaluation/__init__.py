"""Offline evaluation: Market-1501-protocol metrics and batched feature extraction."""

from model.evaluation.features import extract_features
from model.evaluation.metrics import ReIDMetrics, compute_reid_metrics

__all__ = ["ReIDMetrics", "compute_reid_metrics", "extract_features"]
