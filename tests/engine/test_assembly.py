"""engine.assembly: a run's parts built from its config, which the trainer and the backtest share."""
import pytest

from engine.agents.dqn import DQN
from engine.assembly import assemble
from engine.config import RunConfig
from engine.data.synthetic import synthetic_market
from engine.training.trainer import MARKET_WITH_PARTS, Trainer
from tests.engine.helpers import same_metrics

TINY = {
    "task": "portfolio_management",
    "dataset": "synthetic",
    "agent": "ppo",
    "env": {"window": 5, "episode_length": 32},
    "agent_params": {"n_steps": 8, "hidden": [8], "update_epochs": 1},
    "trainer": {"epochs": 2, "steps_per_epoch": 128, "num_envs": 4, "seed": 3},
}


def untimed(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if not k.startswith("time/") or k == "time/env_steps"} for m in history]


def test_the_parts_of_a_config_on_its_named_dataset():
    config = RunConfig.model_validate({"task": "algorithmic_trading", "dataset": "synthetic", "agent": "dqn",
                                       "trainer": {"num_envs": 3, "device": "cpu"}})
    parts = assemble(config)
    assert parts.market.tickers == ("SYN00",)  # the first asset of the built-in market
    assert parts.env_params == config.env_params() and str(parts.device) == "cpu"
    assert parts.train_env.num_envs == 3 and isinstance(parts.agent, DQN)
    assert (parts.train_env.bars.start, parts.train_env.bars.end) == (parts.splits.train.start,
                                                                        parts.splits.train.stop)
    assert assemble(config, num_envs=1).train_env.num_envs == 1


def test_a_trainer_of_assembled_parts_trains_as_one_of_the_config(tmp_path):
    market = synthetic_market(n_assets=3, n_periods=300, seed=11)
    config = RunConfig.model_validate(TINY)
    by_config = Trainer(config, run_dir=tmp_path / "a", market=market).fit()
    by_parts = Trainer(assemble(config, market=market), run_dir=tmp_path / "b").fit()
    assert len(by_parts.history) == len(by_config.history) == 2
    assert all(same_metrics(a, b) for a, b in zip(untimed(by_parts.history), untimed(by_config.history)))


def test_a_market_besides_assembled_parts_is_refused(tmp_path):
    market = synthetic_market(n_assets=3, n_periods=300, seed=11)
    with pytest.raises(TypeError, match=MARKET_WITH_PARTS):
        Trainer(assemble(RunConfig.model_validate(TINY), market=market), run_dir=tmp_path, market=market)
