"""The pickle-free resume state round-trips every piece a run needs."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from training.checkpointing import (
    JSON_FILE,
    TENSORS_FILE,
    Progress,
    ResumeError,
    load_resume_state,
    save_resume_state,
)
from training.config import from_mapping
from training.optim import build_optimizer


def _objects(optimizer: str, seed: int):
    torch.manual_seed(seed)
    network = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    criterion = nn.Linear(3, 1)
    config = from_mapping({"optimizer": optimizer, "lr": 0.01, "warmup_epochs": 1})
    opt = build_optimizer([network, criterion], config)
    return network, criterion, opt


def _train_steps(network, criterion, optimizer, steps: int) -> None:
    for _ in range(steps):
        loss = criterion(network(torch.randn(5, 4))).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_round_trip_continues_identically(tmp_path, optimizer_name):
    network, criterion, optimizer = _objects(optimizer_name, seed=0)
    _train_steps(network, criterion, optimizer, 4)
    random.seed(11)
    np.random.seed(12)
    progress = Progress(
        epoch=1,
        global_step=4,
        best_map=0.25,
        best_epoch=1,
        schedule_history=[{"from_epoch": 1, "lr": 0.01}],
    )
    save_resume_state(
        tmp_path / "resume",
        network=network,
        criterion=criterion,
        optimizer=optimizer,
        progress=progress,
        config={"arch": "x"},
    )
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.old"))
    _train_steps(network, criterion, optimizer, 3)
    expected = [p.detach().clone() for p in network.parameters()]
    expected_draws = (random.random(), float(np.random.rand()))

    # A fresh process: different init, RNGs elsewhere.
    fresh = _objects(optimizer_name, seed=99)
    random.seed(0)
    np.random.seed(0)
    restored = load_resume_state(
        tmp_path / "resume",
        network=fresh[0],
        criterion=fresh[1],
        optimizer=fresh[2],
    )
    assert restored == progress
    _train_steps(*fresh, 3)
    for got, want in zip(fresh[0].parameters(), expected, strict=True):
        torch.testing.assert_close(got, want)
    assert (random.random(), float(np.random.rand())) == expected_draws


def test_state_files_hold_no_pickle(tmp_path):
    network, criterion, optimizer = _objects("adam", seed=0)
    _train_steps(network, criterion, optimizer, 1)
    save_resume_state(
        tmp_path,
        network=network,
        criterion=criterion,
        optimizer=optimizer,
        progress=Progress(1, 1, 0.0, 0),
        config={},
    )
    document = json.loads((tmp_path / JSON_FILE).read_text())
    assert document["format"] == "reid-trainer-state"
    assert (tmp_path / TENSORS_FILE).read_bytes()[:2] != b"\x80\x04"  # not a pickle stream


def test_missing_damaged_and_mismatched_state(tmp_path):
    network, criterion, optimizer = _objects("sgd", seed=0)
    kwargs = {"network": network, "criterion": criterion, "optimizer": optimizer}
    with pytest.raises(ResumeError, match="no resume state"):
        load_resume_state(tmp_path / "absent", **kwargs)
    save_resume_state(
        tmp_path / "state",
        progress=Progress(1, 1, 0.0, 0),
        config={},
        **kwargs,
    )
    other = nn.Sequential(nn.Linear(4, 16))
    with pytest.raises(ResumeError, match="does not fit"):
        load_resume_state(
            tmp_path / "state",
            network=other,
            criterion=criterion,
            optimizer=optimizer,
        )
    (tmp_path / "state" / TENSORS_FILE).write_bytes(b"garbage")
    with pytest.raises(ResumeError, match="cannot read"):
        load_resume_state(tmp_path / "state", **kwargs)
    (tmp_path / "state" / JSON_FILE).write_text("{not json")
    with pytest.raises(ResumeError, match="cannot read"):
        load_resume_state(tmp_path / "state", **kwargs)
