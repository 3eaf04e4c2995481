"""Stop and pause inside an epoch: the trainer asks its callbacks between rollouts and updates, ends
the run at the last completed epoch's checkpoint, and a resumed run redoes the interrupted epoch from
its start, ending where an uninterrupted run ends. And a checkpoint that cannot be written names its
path and the OS error."""
import errno

import pytest
import torch

from engine.config import RunConfig
from engine.data.synthetic import synthetic_market
from engine.training.callbacks import Callback, Signal, Step
from engine.training.trainer import CheckpointError, Trainer
from tests.engine.test_trainer import comparable, same, tiny_config


@pytest.fixture(scope="module")
def market():
    return synthetic_market(n_assets=3, n_periods=300, seed=11)


class AskDuring(Callback):
    """Asks for `signal` at the first step of `epoch` it sees, and counts the steps seen after asking."""

    def __init__(self, epoch: int, signal: Signal):
        self.epoch, self.signal = epoch, signal
        self.asked_at: Step | None = None
        self.steps_after = 0

    def on_step(self, ctx: Step) -> Signal | None:
        if self.asked_at is not None:
            self.steps_after += 1
        elif ctx.epoch == self.epoch:
            self.asked_at = ctx
        return self.signal if ctx.epoch >= self.epoch else None


def test_a_stop_asked_mid_epoch_ends_the_run_at_once_keeping_the_last_whole_epoch(tmp_path, market):
    stop = AskDuring(2, Signal.STOP)

    result = Trainer(tiny_config(), run_dir=tmp_path, market=market, callbacks=[stop]).fit()

    assert (result.status, result.epochs_done, result.interrupted_epoch) == ("stopped", 1, 2)
    assert stop.asked_at.steps_done < stop.asked_at.steps_total and stop.steps_after == 0
    assert [m["epoch"] for m in result.history] == [1.0]
    assert torch.load(result.last_checkpoint, weights_only=True)["epoch"] == 1


@pytest.mark.parametrize("epoch", [1, 2])
def test_a_pause_mid_epoch_resumes_by_redoing_that_epoch_and_ends_where_an_uninterrupted_run_ends(
    tmp_path, market, epoch
):
    full = Trainer(tiny_config(), run_dir=tmp_path / "full", market=market).fit()

    paused = Trainer(tiny_config(), run_dir=tmp_path / "split", market=market,
                     callbacks=[AskDuring(epoch, Signal.PAUSE)]).fit()
    assert (paused.status, paused.epochs_done, paused.interrupted_epoch) == ("paused", epoch - 1, epoch)
    # Epoch 1 cut short leaves no checkpoint: the run starts again, as sessions.runner does.
    resumed = Trainer(tiny_config(), run_dir=tmp_path / "split", market=market).fit(
        resume=paused.last_checkpoint is not None)

    assert resumed.status == "completed" and resumed.interrupted_epoch is None
    assert same(comparable(resumed.history), comparable(full.history))


def test_an_epoch_boundary_stop_is_not_an_interruption(tmp_path, market):
    class StopAtOne(Callback):
        def on_epoch_end(self, ctx):
            return Signal.STOP

    result = Trainer(tiny_config(), run_dir=tmp_path, market=market, callbacks=[StopAtOne()]).fit()

    assert (result.status, result.epochs_done, result.interrupted_epoch) == ("stopped", 1, None)


AGENTS = [
    ("portfolio_management", "ppo", {"n_steps": 8, "hidden": [8], "update_epochs": 1}),
    ("portfolio_management", "a2c", {"n_steps": 8, "hidden": [8]}),
    ("portfolio_management", "eiie", {"n_steps": 8, "update_epochs": 1}),
    ("portfolio_management", "sac", {"learning_starts": 8, "batch_size": 8, "hidden": [8]}),
    ("algorithmic_trading", "dqn", {"learning_starts": 8, "batch_size": 8, "hidden": [8]}),
]


@pytest.mark.parametrize(("task", "agent", "params"), AGENTS, ids=[a for _, a, _ in AGENTS])
def test_every_learning_agent_lets_its_epoch_be_stopped_between_updates(tmp_path, market, task, agent, params):
    if task == "algorithmic_trading":  # one asset
        market = synthetic_market(n_assets=1, n_periods=300, seed=11)
    config = RunConfig.model_validate({
        "task": task, "dataset": "synthetic", "agent": agent, "env": {"window": 5, "episode_length": 32},
        "agent_params": params, "trainer": {"epochs": 2, "steps_per_epoch": 256, "num_envs": 4, "seed": 3},
    })
    stop = AskDuring(1, Signal.STOP)

    result = Trainer(config, run_dir=tmp_path, market=market, callbacks=[stop]).fit()

    assert (result.status, result.epochs_done, result.history) == ("stopped", 0, [])
    assert 0 < stop.asked_at.steps_done < 256 and result.last_checkpoint is None


def test_a_checkpoint_that_cannot_be_written_names_its_path_and_the_os_error(tmp_path, market):
    # A folder standing where the checkpoint's temporary file goes: refused whoever runs the test (root
    # ignores permission bits, so a read-only folder would not refuse it).
    (tmp_path / "last.pt.tmp").mkdir()

    with pytest.raises(CheckpointError) as raised:
        Trainer(tiny_config(), run_dir=tmp_path, market=market).fit()

    assert raised.value.errno == errno.EISDIR
    assert str(raised.value).startswith(f"cannot write the checkpoint {tmp_path / 'last.pt'}: ")
    assert "Is a directory" in str(raised.value) and "last.pt.tmp" in str(raised.value)
