"""Fixtures and helpers of the session tests (test_sessions_*.py import what they use from here)."""
import datetime
import json
from pathlib import Path

import pytest

from sessions import runner, services
from sessions.models import StrategySession
from strategies.models import Dataset, Strategy
from strategies.services import strategy_create

PM = "portfolio_management"
# A training of about a second: the engine's own tiny test config (tests/engine/test_trainer.py).
TINY = {
    "env": {"window": 5, "episode_length": 32},
    "agent_params": {"n_steps": 16, "hidden": [16, 16], "update_epochs": 2},
    "trainer": {"epochs": 3, "steps_per_epoch": 512, "num_envs": 8, "seed": 3, "device": "cpu"},
}


def tiny(epochs: int = 3) -> dict:
    return {**TINY, "trainer": {**TINY["trainer"], "epochs": epochs}}


def tiny_config_file(path: Path, *, epochs: int = 2, **overrides) -> Path:
    """A run config file as `manage.py train` reads it."""
    path.write_text(json.dumps({"task": PM, "dataset": "synthetic", "agent": "ppo", **tiny(epochs), **overrides}))
    return path


@pytest.fixture
def runs_dir(settings, tmp_path) -> Path:
    """RUNS_DIR in tmp_path. The heartbeat thread stays quiet in-process: on SQLite's in-memory test
    database a second connection would see neither the test's uncommitted rows nor its locks."""
    directory = tmp_path / "runs"
    settings.TRADEMASTER = {
        **settings.TRADEMASTER, "RUNS_DIR": directory, "HEARTBEAT_SECONDS": 3600, "RESOURCE_SAMPLE_SECONDS": 3600,
    }
    return directory


@pytest.fixture
def builtin_dataset(db) -> Dataset:
    """The engine's built-in "synthetic" market as a Dataset: its path is the engine's name for it."""
    return Dataset.objects.create(
        name="synthetic", frequency="1d", periods_per_year=252.0, tickers=["A0", "A1", "A2", "A3", "A4"],
        start_date=datetime.date(2000, 1, 3), end_date=datetime.date(2005, 10, 1), path="synthetic",
        checksum="1" * 64, n_bars=1500,
    )


@pytest.fixture
def make_strategy(builtin_dataset):
    def make(owner, name: str = "tiny", epochs: int = 3) -> Strategy:
        return strategy_create(owner=owner, name=name, task=PM, agent="ppo", dataset=builtin_dataset,
                               params=tiny(epochs))

    return make


@pytest.fixture
def tiny_strategy(user, make_strategy) -> Strategy:
    return make_strategy(user)


def run_here(session: StrategySession, **kwargs) -> StrategySession:
    """What a worker does with its slot, in this process: start `session` and run it to its end."""
    started = services.session_start(session=session, process_id=4242, host="test-host")
    return runner.execute(started, **kwargs)
