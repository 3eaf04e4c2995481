"""Double DQN: its target, the epsilon schedule, target-network updates, tiny trainings,
determinism, checkpoints, learning a planted signal, and the refusal of Box action spaces."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.agents.dqn import DQN, DQNParams
from engine.agents.replay import ReplayBuffer, Transitions
from engine.data.synthetic import synthetic_market
from engine.envs.trading_batched import BatchedAlgorithmicTradingEnv
from tests.engine.helpers import same_metrics

TINY = DQNParams(hidden=(16, 16), batch_size=32, learning_starts=32, exploration_steps=1000,
                 target_update_interval=10)


@pytest.fixture(scope="module")
def market():
    return synthetic_market(n_assets=1, n_periods=120, seed=2)


def trading_env(market, num_envs=4, **params):
    params = {"window": 4, "episode_length": 16, **params}
    return BatchedAlgorithmicTradingEnv(market, num_envs=num_envs, device="cpu", **params)


def random_batch(obs_dim: int, n: int, n_actions: int, *, terminated: float, seed: int = 0) -> Transitions:
    g = torch.Generator().manual_seed(seed)
    return Transitions(
        obs=torch.randn(n, obs_dim, generator=g),
        actions=torch.randint(n_actions, (n,), generator=g),
        rewards=torch.randn(n, generator=g) * 0.01,
        next_obs=torch.randn(n, obs_dim, generator=g),
        terminated=torch.full((n,), terminated),
    )


def test_the_replay_buffer_overwrites_its_oldest_transitions_and_samples_only_stored_ones():
    buffer = ReplayBuffer(5, 2, action_dtype=torch.int64)
    for start in (0, 3):  # transitions 0..2, then 3..5: the sixth overwrites the first
        ids = torch.arange(start, start + 3, dtype=torch.float32)
        buffer.add(ids[:, None].expand(3, 2), ids.long(), ids, ids[:, None].expand(3, 2) + 0.5, torch.zeros(3))
    assert buffer.size == 5
    assert sorted(buffer.obs[:, 0].tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    batch = buffer.sample(200, torch.Generator().manual_seed(0))
    assert set(batch.obs[:, 0].tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    # Each sampled row is one whole transition.
    assert torch.equal(batch.actions.float(), batch.obs[:, 0]) and torch.equal(batch.rewards, batch.obs[:, 0])
    assert torch.equal(batch.next_obs, batch.obs + 0.5)


def test_the_loss_uses_the_online_argmax_evaluated_by_the_target_network(market):
    env = trading_env(market, long_only=False)
    agent = DQN(env, DQNParams(hidden=(8,), gamma=0.9), device="cpu", seed=0)
    with torch.no_grad():
        for param in agent.target_net.parameters():
            param.add_(torch.randn(param.shape, generator=torch.Generator().manual_seed(1)))
    batch = random_batch(env.obs_layout.size, 64, 3, terminated=0.0)
    with torch.no_grad():
        # van Hasselt et al. 2016: y = r + gamma * Q_target(s', argmax_a Q_online(s', a)).
        online_next, target_next = agent.q_net(batch.next_obs), agent.target_net(batch.next_obs)
        y = batch.rewards + 0.9 * target_next[torch.arange(64), online_next.argmax(1)]
        q = agent.q_net(batch.obs)[torch.arange(64), batch.actions]
        expected = F.huber_loss(q, y, delta=1.0)
        # Not the plain-DQN target max_a Q_target(s', a): the test would not tell them apart otherwise.
        plain = F.huber_loss(q, batch.rewards + 0.9 * target_next.max(1).values, delta=1.0)
    assert not torch.isclose(expected, plain)
    loss = agent.train_step(batch, torch.Generator())["train/loss"]
    assert torch.isclose(loss, expected, rtol=1e-6)


def test_a_terminated_transition_does_not_bootstrap_and_a_cut_one_does(market):
    env = trading_env(market)
    losses = {}
    for terminated in (1.0, 0.0):
        for next_seed in (1, 2):
            agent = DQN(env, TINY, device="cpu", seed=0)
            batch = random_batch(env.obs_layout.size, 32, 2, terminated=terminated)
            other_next = random_batch(env.obs_layout.size, 32, 2, terminated=terminated, seed=next_seed).next_obs
            batch = batch._replace(next_obs=other_next * 5.0)
            losses[terminated, next_seed] = float(agent.train_step(batch, torch.Generator())["train/loss"])
    assert losses[1.0, 1] == losses[1.0, 2]  # y = r: the next observation does not matter
    assert losses[0.0, 1] != losses[0.0, 2]


def test_the_target_network_copies_the_online_one_every_target_update_interval_steps(market):
    env = trading_env(market)
    agent = DQN(env, DQNParams(hidden=(8,), target_update_interval=3), device="cpu", seed=0)
    batch = random_batch(env.obs_layout.size, 32, 2, terminated=0.0)

    def synced() -> bool:
        return all(torch.equal(a, b) for a, b in zip(agent.q_net.parameters(), agent.target_net.parameters()))

    assert synced()
    for step in range(1, 7):
        agent.train_step(batch, torch.Generator())
        assert synced() == (step % 3 == 0), step


def test_epsilon_falls_linearly_over_env_steps_and_stays_at_its_final_value(market):
    env = trading_env(market)
    params = DQNParams(hidden=(8,), learning_starts=10_000, exploration_initial_eps=1.0, exploration_final_eps=0.1,
                       exploration_steps=1000)
    agent = DQN(env, params, device="cpu", seed=0)
    assert agent.epsilon() == 1.0
    metrics = agent.learn_epoch(env, 200, seed=0)
    assert metrics["train/epsilon"] == pytest.approx(1.0 - 0.9 * 200 / 1000)  # 0.82
    agent.learn_epoch(env, 600, seed=1)
    assert agent.epsilon() == pytest.approx(1.0 - 0.9 * 800 / 1000)  # 0.28
    agent.learn_epoch(env, 400, seed=2)
    assert agent.epsilon() == pytest.approx(0.1)
    # learning_starts above the epoch: no update, and the losses say so rather than inventing a number.
    assert math.isnan(metrics["train/loss"]) and metrics["train/update_steps"] == 0


def test_a_tiny_training_run_reports_finite_metrics(market):
    env = trading_env(market, long_only=False)
    agent = DQN(env, TINY, device="cpu", seed=0)
    metrics = agent.learn_epoch(env, 256, seed=1)
    for key in ("train/loss", "train/q_loss", "train/q_value", "train/epsilon", "train/reward",
                "train/episode_return"):
        assert math.isfinite(metrics[key]), key
    assert metrics["time/env_steps"] == 256 and metrics["train/update_steps"] > 0


def test_actions_are_int64_indices_of_the_discrete_space(market):
    env = trading_env(market, long_only=False)
    agent = DQN(env, TINY, device="cpu", seed=0)
    obs = env.reset(seed=0)
    for deterministic in (True, False):
        action = agent.act(obs, deterministic=deterministic)
        assert action.dtype == torch.int64 and action.shape == (4,)
        assert all(env.single_action_space.contains(int(a)) for a in action)


def test_the_same_seed_gives_identical_metrics_and_another_seed_does_not(market):
    runs = []
    for epoch_seed in (5, 5, 6):
        env = trading_env(market)
        agent = DQN(env, TINY, device="cpu", seed=0)
        runs.append([agent.learn_epoch(env, 128, seed=epoch_seed + k) for k in range(2)])
    assert all(same_metrics(a, b) for a, b in zip(runs[0], runs[1]))
    assert not same_metrics(runs[0][0], runs[2][0])


def test_a_saved_and_loaded_agent_acts_explores_and_trains_on_exactly_like_the_original(market, tmp_path):
    env = trading_env(market)
    agent = DQN(env, TINY, device="cpu", seed=0)
    agent.learn_epoch(env, 128, seed=1)
    agent.save(tmp_path / "dqn.pt", epoch=1)

    restored = DQN(env, TINY, device="cpu", seed=99)
    restored.load(tmp_path / "dqn.pt")
    assert restored.epsilon() == agent.epsilon() < TINY.exploration_initial_eps  # the schedule's position
    obs = env.reset(seed=3)
    assert torch.equal(agent.act(obs), restored.act(obs))
    assert torch.equal(agent.act(obs, deterministic=False), restored.act(obs, deterministic=False))
    assert same_metrics(agent.learn_epoch(env, 128, seed=2), restored.learn_epoch(env, 128, seed=2))


def test_dqn_learns_to_trade_a_planted_signal_on_bars_it_never_trained_on():
    # A strong signal: at each bar a feature correlated 0.95 with the next return.
    market = synthetic_market(n_assets=1, n_periods=600, seed=4, signal_strength=3.0)
    kwargs = {"window": 1, "long_only": False, "transaction_cost": 0.0}
    env = BatchedAlgorithmicTradingEnv(market, num_envs=8, device="cpu", episode_length=32, end=450, **kwargs)
    params = DQNParams(hidden=(32, 32), learning_rate=1e-3, batch_size=64, learning_starts=128,
                       exploration_steps=2000, target_update_interval=50, gamma=0.5)
    agent = DQN(env, params, device="cpu", seed=0)
    rewards = [agent.learn_epoch(env, 1024, seed=epoch)["train/reward"] for epoch in range(4)]
    assert rewards[-1] > 3 * rewards[0] > 0, rewards

    # Held out: how often the greedy position (0 short, 1 flat, 2 long) is on the side of the next move.
    test = BatchedAlgorithmicTradingEnv(market, num_envs=1, device="cpu", start=450, **kwargs)
    next_return = market.close[1:, 0] / market.close[:-1, 0] - 1.0
    obs, t, hits = test.reset(seed=0), 450, []
    while True:
        action = agent.act(obs)
        hits.append(int(action[0]) - 1 == np.sign(next_return[t]))
        obs, _, terminated, truncated, _ = test.step(action)
        t += 1
        if terminated[0] or truncated[0]:
            break
    signal = market.features[450:t, 0, market.feature_names.index("signal")]
    oracle = np.mean(np.sign(signal) == np.sign(next_return[450:t]))  # trading the signal's sign
    # Coin-flipping the side would hit half the bars; the signal's sign hits `oracle` (about 0.88).
    assert np.mean(hits) > 0.75 and np.mean(hits) > oracle - 0.1, (np.mean(hits), oracle)


def test_dqn_refuses_a_box_action_space_naming_itself_and_the_space():
    from engine.envs.portfolio_batched import BatchedPortfolioManagementEnv

    env = BatchedPortfolioManagementEnv(synthetic_market(n_assets=2, n_periods=40), num_envs=2, device="cpu",
                                        window=2)
    with pytest.raises(ValueError, match=r"dqn.*Box"):
        DQN(env, TINY, device="cpu")
