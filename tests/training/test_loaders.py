"""The training run's loaders resize every crop to the run's own input size, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import distributed
from training.config import from_mapping
from training.data.synthetic import generate_synthetic_market
from training.loaders import build_data_pipeline


@pytest.mark.parametrize("decode_once", [False, True])
@pytest.mark.parametrize(("height", "width"), [(256, 128), (128, 64)])
def test_every_loader_gives_crops_at_the_configured_size(
    tmp_path: Path, height: int, width: int, decode_once: bool
) -> None:
    data_dir = generate_synthetic_market(
        tmp_path / "market",
        num_train_ids=4,
        num_test_ids=2,
        num_cameras=2,
        images_per_id_per_camera=1,
        seed=0,
    )
    config = from_mapping(
        {
            "data_dir": str(data_dir),
            "output_dir": str(tmp_path / "run"),
            "batch_p": 2,
            "batch_k": 2,
            "workers": 0,
            "calibration_fraction": 0.5,
            "input_height": height,
            "input_width": width,
            "decode_once": decode_once,
        }
    )
    data = build_data_pipeline(config, distributed.init_from_env("cpu"), pin_memory=False)
    loaders = [data.train_loader, data.query_loader, data.gallery_loader, data.calibration_loader]
    for loader in loaders:
        assert loader is not None
        images, _labels, _camids = next(iter(loader))
        assert tuple(images.shape[1:]) == (3, height, width)
