"""Which config fields a resumed run must keep, and that a change to one is refused."""

from __future__ import annotations

import dataclasses

import pytest

from model.config import ModelConfig
from training.config import TrainConfig, from_mapping, resume_locked_fields
from training.run_setup import check_resume_compatible
from training.usage import UsageError

# What the saved optimiser state and batch plan mean; a rename must not unlock them.
RECIPE_AND_DATA = {"optimizer", "batch_p", "batch_k", "data_dir", "layout", "seed"}


def test_locked_fields_are_run_fields():
    assert set(resume_locked_fields()) <= {item.name for item in dataclasses.fields(TrainConfig)}


def test_every_field_that_shapes_the_network_is_locked():
    shape = {item.name for item in dataclasses.fields(ModelConfig)} - {"num_classes"}
    assert shape <= set(resume_locked_fields())


def test_recipe_and_data_fields_are_locked():
    assert set(resume_locked_fields()) >= RECIPE_AND_DATA


@pytest.mark.parametrize("name", resume_locked_fields())
def test_a_changed_locked_field_is_refused(name):
    config = from_mapping({"data_dir": "/data/market"})
    saved = {**config.to_dict(), name: "something else"}
    with pytest.raises(UsageError, match=name):
        check_resume_compatible(config, saved)


def test_unlocked_fields_and_longer_runs_may_change():
    config = from_mapping({"data_dir": "/data/market", "epochs": 20})
    saved = {**config.to_dict(), "lr": 0.5, "workers": 0, "epochs": 10}
    check_resume_compatible(config, saved)


def test_fewer_epochs_than_saved_is_refused():
    config = from_mapping({"data_dir": "/data/market", "epochs": 5})
    with pytest.raises(UsageError, match="epochs"):
        check_resume_compatible(config, {**config.to_dict(), "epochs": 10})
