"""A2C (engine/agents/a2c.py): PPO's networks and rollout, one plain gradient step per rollout."""
import math

import pytest
import torch
from pydantic import ValidationError

from engine.agents.a2c import A2C, A2CParams
from tests.engine.test_agent_ppo import METRICS, TASKS, assert_same_metrics, make_env, weights

TINY = {"hidden": (16,), "n_steps": 4}


@pytest.mark.parametrize("task", TASKS)
def test_a2c_tiny_run_on_each_task_returns_finite_metrics(task):
    env = make_env(task)
    agent = A2C(env, A2CParams(**TINY), device="cpu", seed=0)
    metrics = agent.learn_epoch(env, 64, seed=0)
    assert set(METRICS) - {"train/approx_kl"} <= metrics.keys()
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert metrics["time/env_steps"] == 64


def test_a2c_takes_one_gradient_step_per_rollout():
    env = make_env("portfolio_management")
    agent = A2C(env, A2CParams(**TINY), device="cpu", seed=0)
    before = weights(agent)
    agent.learn_epoch(env, 64, seed=0)  # 4 envs x 4 steps per rollout: 4 rollouts
    assert isinstance(agent.optimizer, torch.optim.RMSprop)
    steps = {float(s["step"]) for s in agent.optimizer.state_dict()["state"].values()}
    assert steps == {4.0}
    assert any(not torch.equal(a, b) for a, b in zip(before, weights(agent)))


def test_a2c_uses_adam_when_asked():
    env = make_env("portfolio_management")
    agent = A2C(env, A2CParams(**TINY, optimizer="adam"), device="cpu", seed=0)
    assert isinstance(agent.optimizer, torch.optim.Adam)
    assert math.isfinite(agent.learn_epoch(env, 32, seed=0)["train/loss"])


def test_a2c_same_seed_gives_identical_metrics_and_weights():
    runs = []
    for _ in range(2):
        env = make_env("order_execution")
        agent = A2C(env, A2CParams(**TINY), device="cpu", seed=3)
        runs.append(([agent.learn_epoch(env, 64, seed=s) for s in (11, 12)], weights(agent)))
    (metrics_a, weights_a), (metrics_b, weights_b) = runs
    for a, b in zip(metrics_a, metrics_b):
        assert_same_metrics(a, b)
    assert all(torch.equal(x, y) for x, y in zip(weights_a, weights_b))


def test_a2c_save_load_round_trip_acts_identically_and_continues_training_identically(tmp_path):
    env = make_env("portfolio_management")
    agent = A2C(env, A2CParams(**TINY), device="cpu", seed=0)
    agent.learn_epoch(env, 64, seed=1)
    agent.save(tmp_path / "a2c.pt", epoch=1)

    loaded = A2C(env, A2CParams(**TINY), device="cpu", seed=99)
    loaded.load(tmp_path / "a2c.pt")
    obs = env.reset(seed=5)
    assert torch.equal(loaded.act(obs), agent.act(obs))
    assert torch.equal(loaded.act(obs, deterministic=False), agent.act(obs, deterministic=False))

    assert_same_metrics(loaded.learn_epoch(env, 64, seed=2), agent.learn_epoch(env, 64, seed=2))
    assert all(torch.equal(x, y) for x, y in zip(weights(loaded), weights(agent)))


def test_a2c_checkpoint_refuses_to_load_into_ppo(tmp_path):
    from engine.agents.ppo import PPO, PPOParams

    env = make_env("portfolio_management")
    A2C(env, A2CParams(**TINY), device="cpu").save(tmp_path / "a2c.pt", epoch=0)
    with pytest.raises(ValueError, match="a2c"):
        PPO(env, PPOParams(hidden=(16,)), device="cpu").load(tmp_path / "a2c.pt")


@pytest.mark.parametrize(("field", "value"), [
    ("n_steps", 0), ("learning_rate", 0.0), ("optimizer", "sgd"), ("gamma", 2.0), ("gae_lambda", 1.1),
    ("vf_coef", -1.0), ("max_grad_norm", -0.5), ("hidden", (8, -8)), ("log_std_init", 100.0),
])
def test_a2c_params_reject_bad_values_naming_the_field(field, value):
    with pytest.raises(ValidationError, match=field):
        A2CParams(**{field: value})


def test_every_a2c_param_has_a_description_for_the_platform_form():
    assert all(info.description for info in A2CParams.__pydantic_fields__.values())
