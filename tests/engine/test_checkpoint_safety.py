"""A checkpoint is data, never code: loading one runs nothing a planted pickle holds."""
import pickle

import numpy as np
import pytest
import torch

from engine.agents.base import CHECKPOINT_FORMAT
from engine.assembly import assemble
from engine.config import RunConfig
from engine.data.synthetic import synthetic_market


class _Payload:
    """What an attacker pickles: unpickling it calls the function __reduce__ names."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _agent():
    config = RunConfig(task="portfolio_management", agent="ppo", dataset="synthetic")
    return assemble(config, market=synthetic_market(n_assets=2, n_periods=120), num_envs=1).agent


def test_a_planted_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "best.pt"
    torch.save({"agent": "ppo", "state": _Payload(marker)}, path)
    with pytest.raises(pickle.UnpicklingError):
        _agent().load(path)
    assert not marker.exists()


def test_a_checkpoint_round_trips_with_its_rng_as_plain_data(tmp_path):
    agent = _agent()
    path = tmp_path / "last.pt"
    np.random.seed(7)
    agent.save(path, epoch=3)
    expected = np.random.random(3)
    np.random.seed(99)
    payload = agent.load(path)
    assert payload["format"] == CHECKPOINT_FORMAT == 2
    assert payload["epoch"] == 3
    assert isinstance(payload["rng"]["numpy"][1], list)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_a_format_1_checkpoint_with_a_numpy_rng_array_still_loads(tmp_path):
    agent = _agent()
    path = tmp_path / "old.pt"
    np.random.seed(11)
    old_rng = {"python": __import__("random").getstate(), "numpy": np.random.get_state(),
               "torch": torch.get_rng_state()}
    expected = np.random.random(2)
    torch.save({"format": 1, "agent": "ppo", "params": {}, "state": agent.state_dict(), "rng": old_rng,
                "epoch": 1, "extra": {}}, path)
    np.random.seed(0)
    assert agent.load(path)["epoch"] == 1
    np.testing.assert_array_equal(np.random.random(2), expected)
