"""EIIE: the network's weights on hand-checkable inputs, its objective against the env's reward,
tiny trainings, determinism, checkpoints, learning a planted signal, and refused spaces."""
import math

import pytest
import torch

from engine.agents.eiie import EIIE, EIIENet, EIIEParams, log_growth
from engine.data.synthetic import synthetic_market
from engine.envs.base import ObsLayout
from engine.envs.portfolio_batched import BatchedPortfolioManagementEnv
from tests.engine.helpers import same_metrics

TINY = EIIEParams(n_steps=8, minibatch_size=64, update_epochs=2)
LAYOUT = ObsLayout(window=3, n_assets=3, n_features=2, n_extra=4)


@pytest.fixture(scope="module")
def market():
    return synthetic_market(n_assets=3, n_periods=120, seed=2)


def portfolio_env(market, num_envs=4, **params):
    params = {"window": 4, "episode_length": 16, **params}
    return BatchedPortfolioManagementEnv(market, num_envs=num_envs, device="cpu", **params)


def zeroed_net() -> EIIENet:
    net = EIIENet(LAYOUT, kernel_size=2, conv_channels=2, hidden_channels=3)
    with torch.no_grad():
        for param in net.parameters():
            param.zero_()
    return net


def observation(market_values: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """One flat observation: a (W, N, F) market window then the N+1 weights, cash first."""
    return torch.cat((market_values.reshape(-1), torch.tensor(weights))).unsqueeze(0)


def test_eiie_net_with_zero_weights_scores_assets_equally_and_the_cash_bias_sets_the_cash_weight():
    net = zeroed_net()
    obs = observation(torch.randn(3, 3, 2), [1.0, 0.0, 0.0, 0.0])
    assert torch.allclose(net(obs), torch.tensor([[0.25, 0.25, 0.25, 0.25]]))
    with torch.no_grad():
        net.cash_bias.fill_(math.log(3.0))
    # softmax([log 3, 0, 0, 0]) = [3, 1, 1, 1] / 6: cash is the first weight.
    assert torch.allclose(net(obs), torch.tensor([[0.5, 1 / 6, 1 / 6, 1 / 6]]))


def test_eiie_net_scores_each_asset_with_its_current_weight_read_from_the_end_of_the_observation():
    net = zeroed_net()
    with torch.no_grad():
        net.score.weight[0, -1] = 1.0  # the channel holding the asset's current weight
    obs = observation(torch.randn(3, 3, 2), [0.2, 0.5, 0.3, 0.0])
    e = [1.0, math.exp(0.5), math.exp(0.3), 1.0]  # exp of [cash bias 0, d_1, d_2, d_3]
    expected = torch.tensor([[v / sum(e) for v in e]])
    assert torch.allclose(net(obs), expected)


def test_identical_assets_get_identical_weights_and_permuting_the_assets_permutes_the_weights():
    torch.manual_seed(0)
    net = EIIENet(LAYOUT)
    history = torch.randn(3, 3, 2)
    history[:, 2] = history[:, 1]
    w = net(observation(history, [0.1, 0.3, 0.3, 0.3]))
    assert torch.all(w >= 0) and torch.allclose(w.sum(), torch.tensor(1.0))
    assert torch.allclose(w[0, 1], w[0, 2])

    history = torch.randn(3, 3, 2)
    d = [0.1, 0.5, 0.3, 0.1]
    perm = [2, 0, 1]
    w = net(observation(history, d))
    w_perm = net(observation(history[:, perm], [d[0]] + [d[1 + i] for i in perm]))
    assert torch.allclose(w_perm[0, 1:], w[0, 1:][perm], atol=1e-6)
    assert torch.allclose(w_perm[0, 0], w[0, 0], atol=1e-6)


def test_the_training_objective_is_the_log_growth_the_env_rewards(market):
    cost = 0.01
    env = portfolio_env(market, num_envs=3, transaction_cost=cost)
    agent = EIIE(env, TINY, device="cpu", seed=0)
    obs = env.reset(seed=0)
    for _ in range(3):
        # Exploration noise so that the target weights differ from the drifted ones and cost something.
        obs_next, reward, _, _, info = env.step(agent.act(obs, deterministic=False))
        d = obs[:, -4:].double()
        expected = log_growth(info["weights"], info["price_relatives"], d, cost)
        assert torch.allclose(reward.double(), expected, atol=1e-6)
        assert torch.all(info["turnover"] > 0)
        obs = obs_next


def test_acting_asks_the_env_for_the_nets_weights(market):
    env = portfolio_env(market)
    agent = EIIE(env, TINY, device="cpu", seed=0)
    obs = env.reset(seed=0)
    _, _, _, _, info = env.step(agent.act(obs))
    assert torch.allclose(info["weights"].float(), agent.net(obs), atol=1e-6)


def test_a_tiny_training_run_reports_finite_metrics(market):
    env = portfolio_env(market)
    agent = EIIE(env, TINY, device="cpu", seed=0)
    metrics = agent.learn_epoch(env, 256, seed=1)
    for key in ("train/loss", "train/log_growth", "train/turnover", "train/reward", "train/episode_return"):
        assert math.isfinite(metrics[key]), key
    assert metrics["time/env_steps"] == 256
    assert metrics["train/loss"] == -metrics["train/log_growth"]


def test_the_same_seed_gives_identical_metrics_and_another_seed_does_not(market):
    runs = []
    for epoch_seed in (5, 5, 6):
        env = portfolio_env(market)
        agent = EIIE(env, TINY, device="cpu", seed=0)
        runs.append([agent.learn_epoch(env, 128, seed=epoch_seed + k) for k in range(2)])
    assert all(same_metrics(a, b) for a, b in zip(runs[0], runs[1]))
    assert not same_metrics(runs[0][0], runs[2][0])


def test_a_saved_and_loaded_agent_acts_and_trains_on_exactly_like_the_original(market, tmp_path):
    env = portfolio_env(market)
    agent = EIIE(env, TINY, device="cpu", seed=0)
    agent.learn_epoch(env, 128, seed=1)
    agent.save(tmp_path / "eiie.pt", epoch=1)

    restored = EIIE(env, TINY, device="cpu", seed=99)
    restored.load(tmp_path / "eiie.pt")
    obs = env.reset(seed=3)
    assert torch.equal(agent.act(obs), restored.act(obs))
    assert torch.equal(agent.act(obs, deterministic=False), restored.act(obs, deterministic=False))
    assert same_metrics(agent.learn_epoch(env, 128, seed=2), restored.learn_epoch(env, 128, seed=2))


def mean_log_growth(agent, market, start: int) -> float:
    """Mean env reward (log growth net of costs) of the deterministic policy over bars [start, end)."""
    env = BatchedPortfolioManagementEnv(market, num_envs=1, device="cpu", window=3, start=start,
                                        transaction_cost=0.001)
    obs, rewards = env.reset(seed=0), []
    while True:
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs))
        rewards.append(float(reward[0]))
        if terminated[0] or truncated[0]:
            return sum(rewards) / len(rewards)


def test_eiie_learns_a_planted_signal_and_grows_faster_on_bars_it_never_trained_on():
    market = synthetic_market(n_assets=3, n_periods=500, seed=4, signal_strength=1.0)
    env = BatchedPortfolioManagementEnv(market, num_envs=16, device="cpu", window=3, episode_length=32, end=350,
                                        transaction_cost=0.001)
    agent = EIIE(env, EIIEParams(n_steps=16, learning_rate=3e-3), device="cpu", seed=0)
    before = mean_log_growth(agent, market, start=350)
    for epoch in range(4):
        agent.learn_epoch(env, 2048, seed=epoch)
    after = mean_log_growth(agent, market, start=350)
    # 1e-3 per bar is about 25% a year more than the untrained policy.
    assert after > before + 1e-3, (before, after)


def test_eiie_refuses_a_discrete_action_space_naming_itself_and_the_space():
    from engine.envs.trading_batched import BatchedAlgorithmicTradingEnv

    env = BatchedAlgorithmicTradingEnv(synthetic_market(n_assets=1, n_periods=60, seed=0), num_envs=2,
                                       device="cpu", window=4)
    with pytest.raises(ValueError, match=r"eiie.*Discrete"):
        EIIE(env, TINY, device="cpu")


def test_eiie_refuses_the_order_execution_space():
    from engine.envs.execution_batched import BatchedOrderExecutionEnv

    env = BatchedOrderExecutionEnv(synthetic_market(n_assets=1, n_periods=60, seed=0), num_envs=2, device="cpu",
                                   window=4)
    with pytest.raises(ValueError, match=r"eiie.*Box"):
        EIIE(env, TINY, device="cpu")
