"""Small, fast networks shared by the model tests (resnet18 keeps CPU runs short).

Importing ``model`` here also installs the torchvision shim before any test
module imports torchvision directly.
"""

from __future__ import annotations

import pytest
import torch

from model.config import ModelConfig
from model.network import ReIDNet, build_model

SMALL_CONFIG = ModelConfig(arch="resnet18", num_classes=7)


@pytest.fixture
def small_config() -> ModelConfig:
    return SMALL_CONFIG


@pytest.fixture
def small_model() -> ReIDNet:
    torch.manual_seed(0)
    return build_model(SMALL_CONFIG).eval()


@pytest.fixture
def images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 256, 128, generator=generator)
