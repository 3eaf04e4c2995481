"""The trainer: epochs, evaluation, best checkpoint, callbacks, pause/stop, determinism and resume."""
import math

import pytest
import torch

from engine.config import RunConfig
from engine.data.synthetic import synthetic_market
from engine.training.callbacks import Callback, History, Signal, StopAfter
from engine.training.trainer import Trainer


def tiny_config(**trainer) -> RunConfig:
    return RunConfig.model_validate({
        "task": "portfolio_management",
        "dataset": "synthetic",
        "agent": "ppo",
        "env": {"window": 5, "episode_length": 32},
        "agent_params": {"n_steps": 16, "hidden": [16, 16], "update_epochs": 2},
        "trainer": {"epochs": 3, "steps_per_epoch": 512, "num_envs": 8, "seed": 3, **trainer},
    })


@pytest.fixture(scope="module")
def market():
    return synthetic_market(n_assets=3, n_periods=300, seed=11)


def comparable(history: list[dict]) -> list[dict]:
    """Metrics without wall-clock timings, which legitimately differ between runs."""
    return [{k: v for k, v in m.items() if not k.startswith("time/") or k == "time/env_steps"} for m in history]


def same(a: list[dict], b: list[dict]) -> bool:
    return all(x.keys() == y.keys() and all(
        (math.isnan(x[k]) and math.isnan(y[k])) or x[k] == y[k] for k in x) for x, y in zip(a, b)) and len(a) == len(b)


def test_each_epoch_reports_losses_rewards_valid_metrics_and_speed(tmp_path, market):
    history = History()
    result = Trainer(tiny_config(), run_dir=tmp_path, market=market, callbacks=[history]).fit()
    assert result.status == "completed" and result.epochs_done == 3
    assert [m["epoch"] for m in history.epochs] == [1.0, 2.0, 3.0]
    for key in ("train/loss", "train/policy_loss", "train/value_loss", "train/entropy", "train/reward",
                "eval/total_return", "eval/sharpe", "time/epoch_seconds", "time/steps_per_s"):
        assert all(key in m and math.isfinite(m[key]) for m in history.epochs), key
    assert result.best_checkpoint.exists() and result.last_checkpoint.exists()


def test_best_checkpoint_is_the_epoch_with_the_best_valid_metric(tmp_path, market):
    result = Trainer(tiny_config(best_by="total_return"), run_dir=tmp_path, market=market).fit()
    values = [m["eval/total_return"] for m in result.history]
    assert result.best_epoch == values.index(max(values)) + 1
    saved = torch.load(result.best_checkpoint, weights_only=True)
    assert saved["epoch"] == result.best_epoch


def test_same_seed_on_the_cpu_gives_identical_metrics(tmp_path, market):
    a = Trainer(tiny_config(), run_dir=tmp_path / "a", market=market).fit()
    b = Trainer(tiny_config(), run_dir=tmp_path / "b", market=market).fit()
    assert same(comparable(a.history), comparable(b.history))
    c = Trainer(tiny_config(seed=4), run_dir=tmp_path / "c", market=market).fit()
    assert not same(comparable(a.history), comparable(c.history))


def test_stopping_at_an_epoch_and_resuming_ends_where_an_uninterrupted_run_ends(tmp_path, market):
    full = Trainer(tiny_config(), run_dir=tmp_path / "full", market=market).fit()
    first = Trainer(tiny_config(), run_dir=tmp_path / "split", market=market, callbacks=[StopAfter(1)]).fit()
    assert first.status == "stopped" and first.epochs_done == 1
    resumed = Trainer(tiny_config(), run_dir=tmp_path / "split", market=market).fit(resume=True)
    assert resumed.status == "completed" and resumed.epochs_done == 3
    assert same(comparable(resumed.history), comparable(full.history))


def test_a_callback_can_pause_and_the_run_resumes_from_its_checkpoint(tmp_path, market):
    class PauseAtTwo(Callback):
        def on_epoch_end(self, ctx):
            return Signal.PAUSE if ctx.epoch == 2 else None

    paused = Trainer(tiny_config(), run_dir=tmp_path, market=market, callbacks=[PauseAtTwo()]).fit()
    assert paused.status == "paused" and paused.epochs_done == 2
    assert torch.load(paused.last_checkpoint, weights_only=True)["epoch"] == 2
    resumed = Trainer(tiny_config(), run_dir=tmp_path, market=market).fit(resume=True)
    assert [m["epoch"] for m in resumed.history] == [1.0, 2.0, 3.0]


def test_a_callback_returning_false_stops_the_run(tmp_path, market):
    class No(Callback):
        def on_epoch_end(self, ctx):
            return False

    assert Trainer(tiny_config(), run_dir=tmp_path, market=market, callbacks=[No()]).fit().status == "stopped"


def test_resume_without_a_checkpoint_says_so(tmp_path, market):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(tiny_config(), run_dir=tmp_path, market=market).fit(resume=True)


def test_a_window_longer_than_a_split_is_refused_before_training(tmp_path, market):
    from pydantic import ValidationError

    config = tiny_config().model_copy(update={"env": {**tiny_config().env, "window": 60}})
    with pytest.raises(ValidationError, match="window 60 is longer than the valid split"):
        Trainer(config, run_dir=tmp_path, market=market)
