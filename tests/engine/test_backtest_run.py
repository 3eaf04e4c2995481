"""engine.backtest.backtest: a checkpoint's report without a trainer, the same JSON as Trainer.backtest's."""
import json

import pytest

from engine.backtest import backtest
from engine.backtest.run import CHECKPOINT_MISSING
from engine.config import RunConfig
from engine.data.synthetic import synthetic_market
from engine.training.trainer import Trainer

TINY = {
    "ppo": {"n_steps": 8, "hidden": [8], "update_epochs": 1},
    "dqn": {"hidden": [8], "learning_starts": 16, "batch_size": 8},
    "sac": {"hidden": [8], "learning_starts": 16, "batch_size": 8},
    "eiie": {"n_steps": 8, "update_epochs": 1, "hidden_channels": 4},
    "random": {},
}


def tiny_config(task: str, agent: str) -> RunConfig:
    return RunConfig.model_validate({
        "task": task,
        "dataset": "synthetic",
        "agent": agent,
        "env": {"window": 5},
        "agent_params": TINY[agent],
        "trainer": {"epochs": 2, "steps_per_epoch": 64, "num_envs": 4, "seed": 7},
    })


@pytest.fixture(scope="module")
def markets():
    return {"portfolio_management": synthetic_market(n_assets=3, n_periods=300, seed=2),
            "algorithmic_trading": synthetic_market(n_assets=1, n_periods=300, seed=2),
            "order_execution": synthetic_market(n_assets=1, n_periods=300, seed=2)}


@pytest.mark.parametrize("task, agent", [
    ("portfolio_management", "ppo"), ("portfolio_management", "eiie"), ("portfolio_management", "random"),
    ("algorithmic_trading", "ppo"), ("algorithmic_trading", "dqn"),
    ("order_execution", "ppo"), ("order_execution", "sac"),
])
def test_a_checkpoints_report_is_byte_for_byte_the_trainers(tmp_path, markets, task, agent):
    config, market = tiny_config(task, agent), markets[task]
    trainer = Trainer(config, run_dir=tmp_path, market=market)
    result = trainer.fit()
    expected = json.dumps(trainer.backtest(), allow_nan=False)

    report = backtest(config, checkpoint=result.best_checkpoint, market=market)

    assert json.dumps(report, allow_nan=False) == expected
    assert report["split"] == "test" and report["task"] == task


def test_without_a_checkpoint_the_agent_is_backtested_as_it_starts(tmp_path, markets):
    config, market = tiny_config("order_execution", "ppo"), markets["order_execution"]
    untrained = Trainer(config, run_dir=tmp_path, market=market).backtest(split="valid", benchmark="random")

    report = backtest(config, split="valid", benchmark="random", market=market)

    assert json.dumps(report, allow_nan=False) == json.dumps(untrained, allow_nan=False)
    assert report["benchmark"] == "random" and report["split"] == "valid"


def test_a_missing_checkpoint_is_refused_with_its_path(tmp_path, markets):
    missing = tmp_path / "best.pt"
    with pytest.raises(FileNotFoundError) as error:
        backtest(tiny_config("algorithmic_trading", "dqn"), checkpoint=missing, market=markets["algorithmic_trading"])
    assert str(error.value) == CHECKPOINT_MISSING.format(path=missing)
