"""PPO (engine/agents/ppo.py) and the rollout buffer's GAE (engine/agents/buffers.py)."""
import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from pydantic import ValidationError

from engine.agents.buffers import RolloutBuffer
from engine.agents.episodes import EpisodeStats
from engine.agents.policies import ActorCritic
from engine.agents.ppo import PPO, PPOParams
from engine.data.synthetic import synthetic_market
from engine.envs import BATCHED_ENVS

TASKS = ("portfolio_management", "algorithmic_trading", "order_execution")
TINY = {"hidden": (16,), "n_steps": 8, "minibatch_size": 16, "update_epochs": 2}
METRICS = ("train/loss", "train/policy_loss", "train/value_loss", "train/entropy", "train/approx_kl",
           "train/reward", "train/episode_return", "time/env_steps")


def make_env(task: str, num_envs: int = 4, **kwargs):
    """A small batched env of `task` on a synthetic market, on the CPU."""
    if task == "portfolio_management":
        market = synthetic_market(n_assets=3, n_periods=60, seed=1)
        kwargs = {"window": 3, "episode_length": 8, **kwargs}
    elif task == "algorithmic_trading":
        market = synthetic_market(n_assets=1, n_periods=60, seed=1)
        kwargs = {"window": 3, "episode_length": 8, **kwargs}
    else:
        market = synthetic_market(n_assets=1, n_periods=60, seed=1)
        kwargs = {"window": 3, "horizon": 8, "random_start": True, **kwargs}
    return BATCHED_ENVS[task](market, num_envs=num_envs, device="cpu", **kwargs)


def weights(agent) -> list[torch.Tensor]:
    return [p.detach().clone() for p in agent.policy.parameters()]


def n_params(agent) -> int:
    return sum(p.numel() for p in agent.policy.parameters())


def assert_same_metrics(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key] or (math.isnan(a[key]) and math.isnan(b[key])), key


# -- GAE --------------------------------------------------------------------------------------------


def test_rollout_buffer_gae_matches_a_hand_computed_three_step_example():
    # gamma = lambda = 0.5. Env 0: step 0 continues, step 1 is terminated (no bootstrap), step 2 is
    # truncated with V(final_obs) = 6 (reward becomes 3 + 0.5 * 6 = 6; the last value 10 is unused).
    #   A2 = 6 - 1 = 5;  A1 = 2 - 4 = -2;  A0 = (1 + 0.5 * 4 - 2) + 0.25 * (-2) = 0.5
    # Env 1: nothing ends, so the last value 8 is bootstrapped.
    #   A2 = 1 + 0.5 * 8 = 5;  A1 = 1 + 0.25 * 5 = 2.25;  A0 = 1 + 0.25 * 2.25 = 1.5625
    # Env 2: as env 0, but step 2 is both terminated and truncated: terminated wins, no bootstrap.
    #   A2 = 3 - 1 = 2;  A1 = -2;  A0 = 0.5
    buf = RolloutBuffer(3, 3, obs_dim=1, gamma=0.5, gae_lambda=0.5)
    rewards = [[1.0, 1.0, 1.0], [2.0, 1.0, 2.0], [3.0, 1.0, 3.0]]
    values = [[2.0, 0.0, 2.0], [4.0, 0.0, 4.0], [1.0, 0.0, 1.0]]
    terminated = [[False, False, False], [True, False, True], [False, False, True]]
    truncated = [[False, False, False], [False, False, False], [True, False, True]]
    final_values = [None, None, torch.tensor([6.0, float("nan"), 6.0])]
    for t in range(3):
        buf.add(torch.zeros(3, 1), torch.zeros(3), torch.zeros(3), torch.tensor(values[t]), torch.tensor(rewards[t]),
                torch.tensor(terminated[t]), torch.tensor(truncated[t]), final_values[t])
    buf.compute_returns_and_advantages(torch.tensor([10.0, 8.0, 10.0]))

    expected_adv = torch.tensor([[0.5, 1.5625, 0.5], [-2.0, 2.25, -2.0], [5.0, 5.0, 2.0]])
    torch.testing.assert_close(buf.advantages, expected_adv)
    torch.testing.assert_close(buf.returns, expected_adv + torch.tensor(values))


def test_rollout_buffer_minibatches_cover_every_sample_once():
    buf = RolloutBuffer(4, 3, obs_dim=2)
    for t in range(4):
        obs = torch.arange(3, dtype=torch.float32).unsqueeze(1).expand(3, 2) + 10 * t
        buf.add(obs, torch.zeros(3), torch.zeros(3), torch.zeros(3), torch.zeros(3),
                torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool))
    batches = list(buf.minibatches(5, torch.Generator().manual_seed(0)))
    assert [len(b.obs) for b in batches] == [5, 5, 2]
    seen = sorted(float(x) for b in batches for x in b.obs[:, 0])
    assert seen == sorted(float(10 * t + i) for t in range(4) for i in range(3))


def test_episode_stats_average_the_returns_of_finished_episodes_only():
    stats = EpisodeStats(2, torch.device("cpu"))
    stats.update(torch.tensor([1.0, 2.0]), torch.tensor([False, False]))
    stats.update(torch.tensor([3.0, 4.0]), torch.tensor([True, False]))  # env 0 finishes with 1 + 3
    stats.update(torch.tensor([5.0, 6.0]), torch.tensor([False, True]))  # env 1 finishes with 2 + 4 + 6
    m = stats.metrics()
    assert m["train/episode_return"] == (4.0 + 12.0) / 2
    assert m["train/reward"] == 21.0 / 6
    assert m["time/env_steps"] == 6.0


# -- networks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", [gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(3)])
def test_actor_critic_forward_equals_its_two_separate_mlps(space):
    # forward() runs both first layers as one stacked matmul; it must be the two MLPs, nothing else.
    net = ActorCritic(7, space, hidden=(5, 4))
    obs = torch.randn(6, 7, generator=torch.Generator().manual_seed(0))
    out, value = net(obs)
    torch.testing.assert_close(out, net.actor(obs))
    torch.testing.assert_close(value, net.critic(obs).squeeze(-1))


def test_actor_critic_log_prob_and_entropy_match_torch_distributions():
    gen = torch.Generator().manual_seed(1)
    obs = torch.randn(5, 7, generator=gen)
    gauss = ActorCritic(7, gym.spaces.Box(-1, 1, (3,), np.float32), hidden=(4,), log_std_init=-0.5)
    mean, _ = gauss(obs)
    action, log_prob, _ = gauss.sample(obs, gen)
    normal = torch.distributions.Normal(mean, gauss.log_std.exp())
    torch.testing.assert_close(log_prob, normal.log_prob(action).sum(-1))
    torch.testing.assert_close(gauss.entropy(mean), normal.entropy().sum(-1))

    cat = ActorCritic(7, gym.spaces.Discrete(4), hidden=(4,))
    logits, _ = cat(obs)
    action, log_prob, _ = cat.sample(obs, gen)
    categorical = torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(log_prob, categorical.log_prob(action))
    torch.testing.assert_close(cat.entropy(logits), categorical.entropy())


def test_categorical_sampling_follows_the_policy_probabilities():
    net = ActorCritic(2, gym.spaces.Discrete(3), hidden=(4,))
    with torch.no_grad():
        net.actor[-1].weight.zero_()
        net.actor[-1].bias.copy_(torch.log(torch.tensor([0.2, 0.3, 0.5])))
    actions, _, _ = net.sample(torch.zeros(20_000, 2), torch.Generator().manual_seed(0))
    freq = torch.bincount(actions, minlength=3) / 20_000
    torch.testing.assert_close(freq, torch.tensor([0.2, 0.3, 0.5]), atol=0.015, rtol=0)


# -- rollout ----------------------------------------------------------------------------------------


def replay(env, actions: torch.Tensor, seed: int):
    """Step a fresh env through stored actions; per step (reward, terminated, truncated, final_obs)."""
    env.reset(seed=seed)
    return [env.step(a)[1:] for a in actions]


def test_rollout_bootstraps_truncated_episodes_from_the_value_of_the_final_observation():
    env = make_env("portfolio_management", num_envs=2, episode_length=3)
    agent = PPO(env, PPOParams(**TINY), device="cpu", seed=0)
    buf = RolloutBuffer(3, 2, env.single_observation_space.shape[0], action_shape=(4,), gamma=0.9, gae_lambda=0.95)
    agent.collect_rollout(env, env.reset(seed=7), buf, torch.Generator().manual_seed(0), EpisodeStats(2, agent.device))

    steps = replay(make_env("portfolio_management", num_envs=2, episode_length=3), agent._to_env(buf.actions), seed=7)
    reward, terminated, truncated, info = steps[2]
    assert truncated.all() and not terminated.any()
    with torch.no_grad():
        expected = reward + 0.9 * agent.policy.value(info["final_obs"])
    torch.testing.assert_close(buf.rewards[2], expected)
    torch.testing.assert_close(buf.rewards[:2], torch.stack([s[0] for s in steps[:2]]))
    assert buf.dones[2].all() and not buf.dones[:2].any()


def test_rollout_does_not_bootstrap_terminated_episodes():
    env = make_env("order_execution", num_envs=2, horizon=3, random_start=False)
    agent = PPO(env, PPOParams(**TINY), device="cpu", seed=0)
    buf = RolloutBuffer(3, 2, env.single_observation_space.shape[0], action_shape=(1,), gamma=0.9, gae_lambda=0.95)
    agent.collect_rollout(env, env.reset(seed=7), buf, torch.Generator().manual_seed(0), EpisodeStats(2, agent.device))

    steps = replay(make_env("order_execution", num_envs=2, horizon=3, random_start=False),
                   agent._to_env(buf.actions), seed=7)
    terminated = torch.stack([s[1] for s in steps])
    # Every order completes (terminated) by its 3-step horizon, none is cut by the data.
    assert terminated.any(dim=0).all() and not any(s[2].any() for s in steps)
    torch.testing.assert_close(buf.rewards, torch.stack([s[0] for s in steps]))
    assert torch.equal(buf.dones.bool(), terminated)


# -- training ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_ppo_tiny_run_on_each_task_returns_finite_metrics(task):
    env = make_env(task)
    agent = PPO(env, PPOParams(**TINY), device="cpu", seed=0)
    metrics = agent.learn_epoch(env, 64, seed=0)
    assert set(METRICS) <= metrics.keys()
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert metrics["time/env_steps"] == 64  # 4 envs x 2 rollouts of 8 steps


@pytest.mark.parametrize("task", TASKS)
def test_ppo_acts_within_the_action_space(task):
    env = make_env(task)
    agent = PPO(env, PPOParams(**TINY), device="cpu", seed=0)
    obs = 100 * torch.randn((32, env.single_observation_space.shape[0]), generator=torch.Generator().manual_seed(0))
    space = env.single_action_space
    for deterministic in (True, False):
        actions = agent.act(obs, deterministic=deterministic)
        assert actions.shape[0] == 32
        assert all(space.contains(a) for a in actions.numpy())
        assert actions.dtype == (torch.int64 if isinstance(space, gym.spaces.Discrete) else torch.float32)


def test_ppo_with_a_shared_network_trains_and_has_one_hidden_stack():
    env = make_env("algorithmic_trading")
    shared = PPO(env, PPOParams(**{**TINY, "shared_network": True, "activation": "relu"}), device="cpu", seed=0)
    separate = PPO(env, PPOParams(**TINY), device="cpu", seed=0)
    obs_dim = env.single_observation_space.shape[0]
    # One obs -> 16 layer instead of two; the heads are the same size.
    assert n_params(separate) - n_params(shared) == obs_dim * 16 + 16
    metrics = shared.learn_epoch(env, 64, seed=0)
    assert all(math.isfinite(v) for v in metrics.values()), metrics


def test_ppo_same_seed_gives_identical_metrics_and_weights():
    runs = []
    for _ in range(2):
        env = make_env("portfolio_management")
        agent = PPO(env, PPOParams(**TINY), device="cpu", seed=3)
        runs.append(([agent.learn_epoch(env, 64, seed=s) for s in (11, 12)], weights(agent)))
    (metrics_a, weights_a), (metrics_b, weights_b) = runs
    for a, b in zip(metrics_a, metrics_b):
        assert_same_metrics(a, b)
    assert all(torch.equal(x, y) for x, y in zip(weights_a, weights_b))


def test_ppo_different_epoch_seeds_give_different_metrics():
    env = make_env("portfolio_management")
    a = PPO(env, PPOParams(**TINY), device="cpu", seed=3).learn_epoch(env, 64, seed=1)
    b = PPO(env, PPOParams(**TINY), device="cpu", seed=3).learn_epoch(env, 64, seed=2)
    assert a["train/loss"] != b["train/loss"]


def test_ppo_save_load_round_trip_acts_identically_and_continues_training_identically(tmp_path):
    env = make_env("algorithmic_trading")
    agent = PPO(env, PPOParams(**TINY), device="cpu", seed=0)
    agent.learn_epoch(env, 64, seed=1)
    agent.save(tmp_path / "ppo.pt", epoch=1)

    loaded = PPO(env, PPOParams(**TINY), device="cpu", seed=99)
    assert loaded.load(tmp_path / "ppo.pt")["epoch"] == 1
    obs = env.reset(seed=5)
    assert torch.equal(loaded.act(obs), agent.act(obs))
    assert torch.equal(loaded.act(obs, deterministic=False), agent.act(obs, deterministic=False))

    assert_same_metrics(loaded.learn_epoch(env, 64, seed=2), agent.learn_epoch(env, 64, seed=2))
    assert all(torch.equal(x, y) for x, y in zip(weights(loaded), weights(agent)))


def test_ppo_target_kl_stops_the_update_after_the_first_pass():
    env = make_env("portfolio_management")
    # 32 samples per rollout in minibatches of 16: 2 steps per pass, 4 passes without target_kl.
    full = PPO(env, PPOParams(**{**TINY, "update_epochs": 4}), device="cpu", seed=0)
    early = PPO(env, PPOParams(**{**TINY, "update_epochs": 4, "target_kl": 1e-12}), device="cpu", seed=0)
    assert full.learn_epoch(env, 32, seed=0)["train/update_steps"] == 8
    assert early.learn_epoch(env, 32, seed=0)["train/update_steps"] == 2


def mean_greedy_reward(agent, env, steps: int = 48) -> float:
    obs, total = env.reset(seed=123), 0.0
    for _ in range(steps):
        obs, reward, *_ = env.step(agent.act(obs))
        total += float(reward.mean())
    return total / steps


def test_ppo_learns_a_planted_signal_and_its_reward_per_step_goes_up():
    market = synthetic_market(n_assets=3, n_periods=400, signal_strength=1.0)
    env = BATCHED_ENVS["portfolio_management"](market, num_envs=16, device="cpu", window=2, episode_length=32,
                                               transaction_cost=0.0)
    params = PPOParams(hidden=(32,), n_steps=32, minibatch_size=128, update_epochs=10, learning_rate=3e-3)
    agent = PPO(env, params, device="cpu", seed=0)
    greedy_before = mean_greedy_reward(agent, env)
    rewards = [agent.learn_epoch(env, 2048, seed=epoch)["train/reward"] for epoch in range(10)]
    # Log growth per bar: a policy that ignores the signal earns the market's drift (~0 here); one that
    # follows it earns a few tenths of a percent per bar.
    assert np.mean(rewards[-2:]) > np.mean(rewards[:2]) + 1e-3, rewards
    assert mean_greedy_reward(agent, env) > greedy_before + 1e-3


# -- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("n_steps", 0), ("learning_rate", -1e-3), ("gamma", 1.5), ("gae_lambda", -0.1), ("update_epochs", 0),
    ("minibatch_size", 0), ("clip_coef", 0.0), ("ent_coef", -0.01), ("max_grad_norm", 0.0), ("hidden", ()),
    ("hidden", (64, 0)), ("activation", "sigmoid"), ("target_kl", 0.0),
])
def test_ppo_params_reject_bad_values_naming_the_field(field, value):
    with pytest.raises(ValidationError, match=field):
        PPOParams(**{field: value})


def test_every_ppo_param_has_a_description_for_the_platform_form():
    schema = PPOParams.__pydantic_fields__
    assert all(info.description for info in schema.values())


def test_ppo_rejects_an_action_space_it_cannot_handle_naming_agent_and_space():
    env = SimpleNamespace(
        single_observation_space=gym.spaces.Box(-1, 1, (4,), np.float32),
        single_action_space=gym.spaces.MultiDiscrete([2, 3]),
        obs_layout=None, num_envs=1, device=torch.device("cpu"),
    )
    with pytest.raises(ValueError, match=r"ppo.*MultiDiscrete"):
        PPO(env, device="cpu")


def test_ppo_learn_epoch_rejects_a_non_positive_step_count():
    env = make_env("portfolio_management")
    with pytest.raises(ValueError, match="n_steps"):
        PPO(env, PPOParams(**TINY), device="cpu").learn_epoch(env, 0, seed=0)
