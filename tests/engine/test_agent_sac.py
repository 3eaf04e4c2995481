"""SAC: tiny trainings on the portfolio and execution envs, determinism, checkpoints, the squashed
action bounds, and the refusal of spaces it cannot handle."""
import math

import numpy as np
import pytest
import torch

from engine.agents.episodes import EpisodeStats
from engine.agents.replay import ReplayBuffer
from engine.agents.sac import SAC, SACParams
from engine.data.synthetic import synthetic_market
from engine.envs.portfolio_batched import BatchedPortfolioManagementEnv
from tests.engine.helpers import same_metrics

TINY = SACParams(hidden=(16, 16), batch_size=32, learning_starts=32, train_frequency=2)


@pytest.fixture(scope="module")
def market():
    return synthetic_market(n_assets=3, n_periods=120, seed=2)


def portfolio_env(market, **params):
    params = {"window": 4, "episode_length": 16, **params}
    return BatchedPortfolioManagementEnv(market, num_envs=4, device="cpu", **params)


def execution_env():
    from engine.envs.execution_batched import BatchedOrderExecutionEnv

    market = synthetic_market(n_assets=1, n_periods=120, seed=3)
    return BatchedOrderExecutionEnv(market, num_envs=4, device="cpu", window=4, horizon=8)


@pytest.mark.parametrize("make_env", ["portfolio", "execution"])
def test_a_tiny_training_run_reports_finite_losses_alpha_and_rewards(market, make_env):
    env = portfolio_env(market) if make_env == "portfolio" else execution_env()
    agent = SAC(env, TINY, device="cpu", seed=0)
    metrics = agent.learn_epoch(env, 256, seed=1)
    for key in ("train/loss", "train/q_loss", "train/policy_loss", "train/entropy", "train/alpha",
                "train/reward", "train/episode_return"):
        assert math.isfinite(metrics[key]), key
    assert metrics["time/env_steps"] == 256
    assert metrics["train/update_steps"] > 0
    # Entropy tuning moved alpha away from its initial value.
    assert metrics["train/alpha"] != TINY.alpha


def test_the_same_seed_gives_identical_metrics_and_another_seed_does_not(market):
    runs = []
    for agent_seed, epoch_seed in ((0, 5), (0, 5), (0, 6)):
        env = portfolio_env(market)
        agent = SAC(env, TINY, device="cpu", seed=agent_seed)
        runs.append([agent.learn_epoch(env, 128, seed=epoch_seed + k) for k in range(2)])
    assert all(same_metrics(a, b) for a, b in zip(runs[0], runs[1]))
    assert not same_metrics(runs[0][0], runs[2][0])


def test_a_saved_and_loaded_agent_acts_and_trains_on_exactly_like_the_original(market, tmp_path):
    env = portfolio_env(market)
    agent = SAC(env, TINY, device="cpu", seed=0)
    agent.learn_epoch(env, 128, seed=1)
    agent.save(tmp_path / "sac.pt", epoch=1)

    restored = SAC(env, TINY, device="cpu", seed=99)
    assert restored.load(tmp_path / "sac.pt")["epoch"] == 1
    obs = env.reset(seed=3)
    assert torch.equal(agent.act(obs), restored.act(obs))
    assert torch.equal(agent.act(obs, deterministic=False), restored.act(obs, deterministic=False))
    assert same_metrics(agent.learn_epoch(env, 128, seed=2), restored.learn_epoch(env, 128, seed=2))


def test_actions_are_float32_inside_the_bounds_even_for_extreme_means(market):
    env = portfolio_env(market)
    agent = SAC(env, TINY, device="cpu", seed=0)
    with torch.no_grad():
        # A huge last-layer bias drives the Gaussian mean far outside [-1, 1] before the tanh.
        agent.actor.net[-1].bias[:4] = 1e4
        agent.actor.net[-1].bias[0] = -1e4
    obs = env.reset(seed=0)
    for deterministic in (True, False):
        action = agent.act(obs, deterministic=deterministic)
        assert action.dtype == torch.float32 and action.shape == (4, 4)
        low, high = env.single_action_space.low, env.single_action_space.high
        assert np.all(action.numpy() >= low) and np.all(action.numpy() <= high)
        # The squash reaches the bounds: cash at the lower bound (pinned), the assets at the upper.
        assert torch.all(action[:, 0] == -env.params.logit_bound)
        assert torch.all(action[:, 1:] == env.params.logit_bound)


def test_a_truncated_episode_is_stored_with_its_final_observation_and_not_as_terminated(market):
    # episode_length=1: every step truncates and the env auto-resets to an all-cash observation.
    env = portfolio_env(market, episode_length=1)
    agent = SAC(env, TINY, device="cpu", seed=0)
    buffer = ReplayBuffer(8, env.obs_layout.size, action_shape=(4,), device="cpu")
    obs = env.reset(seed=0)
    next_obs = agent.collect_step(env, obs, buffer, torch.Generator().manual_seed(0), EpisodeStats(4, agent.device))
    n = env.obs_layout.n_assets + 1
    assert torch.all(next_obs[:, -n] == 1.0)  # the reset observation: all cash
    stored_next_weights = buffer.next_obs[:4, -n:]
    assert torch.all(stored_next_weights[:, 0] < 1.0)  # the ended episode's drifted weights, invested
    assert torch.all(buffer.terminated[:4] == 0.0)


def test_sac_refuses_a_discrete_action_space_naming_itself_and_the_space():
    from engine.envs.trading_batched import BatchedAlgorithmicTradingEnv

    env = BatchedAlgorithmicTradingEnv(synthetic_market(n_assets=1, n_periods=60, seed=0), num_envs=2,
                                       device="cpu", window=4)
    with pytest.raises(ValueError, match=r"sac.*Discrete"):
        SAC(env, TINY, device="cpu")
