"""The rule-based baselines against values derived from the prices by hand: buy-and-hold's final
value, the constant-rebalanced portfolio's turnover, TWAP's equal slices; random's reproducibility;
and the tasks each refuses."""
import numpy as np
import pandas as pd
import pytest
import torch

from engine.agents.baselines import CRP, TWAP, BuyAndHold, RandomAgent
from engine.data.market import MarketData
from engine.data.synthetic import synthetic_market
from engine.envs.execution_batched import BatchedOrderExecutionEnv
from engine.envs.portfolio import rebalance_factor
from engine.envs.portfolio_batched import BatchedPortfolioManagementEnv
from engine.envs.trading_batched import BatchedAlgorithmicTradingEnv

DJ30_TEST = "/work/shared/data/dj30/test.csv"
# Unit roundoff of float32: the env observes the drifted weights as float32, and the actions are float32.


def one_asset_market(close) -> MarketData:
    close = np.asarray(close, dtype=np.float64).reshape(-1, 1)
    t = len(close)
    return MarketData(
        dates=np.datetime64("2020-01-01", "ns") + np.arange(t) * np.timedelta64(1, "D"),
        tickers=("A",),
        prices={"close": close},
        features=np.zeros((t, 1, 1), dtype=np.float32),
        feature_names=("zero",),
        frequency="daily",
        periods_per_year=252.0,
        name="hand",
    )


def dj30_test_slice(stop: int) -> MarketData:
    """The first `stop` bars of DJ30's test split, pivoted to a panel here (independent of the
    engine's readers); one dummy feature, which buy-and-hold does not look at."""
    df = pd.read_csv(DJ30_TEST, index_col=0, parse_dates=["date"])
    close = df.pivot(index="date", columns="tic", values="close").sort_index().iloc[:stop]
    t, n = close.shape
    return MarketData(
        dates=close.index.to_numpy().astype("datetime64[ns]"),
        tickers=tuple(close.columns),
        prices={"close": close.to_numpy(np.float64)},
        features=np.zeros((t, n, 1), dtype=np.float32),
        feature_names=("zero",),
        frequency="daily",
        periods_per_year=252.0,
        name="dj30-test",
    )


def run_episode(agent, env) -> list[dict]:
    """Step a one-copy env with the agent until the episode ends; the info of every step."""
    obs, infos = env.reset(seed=0), []
    while True:
        obs, _, terminated, truncated, info = env.step(agent.act(obs))
        infos.append(info)
        if terminated[0] or truncated[0]:
            return infos


def test_buy_and_hold_without_costs_ends_at_the_mean_price_relative_of_the_assets():
    market = dj30_test_slice(252)  # all of 2021
    close = market.close
    env = BatchedPortfolioManagementEnv(market, num_envs=1, device="cpu", window=1, transaction_cost=0.0,
                                        initial_cash=1_000_000.0)
    infos = run_episode(BuyAndHold(env, device="cpu"), env)
    final = float(infos[-1]["portfolio_value"][0])
    # Equal dollar amounts at bar 0, never traded: V_T = V_0 * mean_i(close_T,i / close_0,i).
    expected = 1_000_000.0 * np.mean(close[-1] / close[0])
    assert final == pytest.approx(expected, rel=1e-12)
    turnover = np.array([float(i["turnover"][0]) for i in infos])
    assert turnover[0] == pytest.approx(1.0, abs=1e-12)  # all cash into the assets, once
    # Re-targeting the observed (float32) weights lands inside the env's no-trade band: never traded again.
    assert np.all(turnover[1:] == 0.0)


def test_buy_and_hold_buys_again_at_the_first_step_of_every_auto_reset_episode():
    market = synthetic_market(n_assets=3, n_periods=60, seed=1)
    env = BatchedPortfolioManagementEnv(market, num_envs=2, device="cpu", window=2, episode_length=3)
    agent = BuyAndHold(env, device="cpu")
    obs = env.reset(seed=0)
    turnovers, firsts = [], []
    for _ in range(9):
        firsts.append(obs[:, -4] == 1.0)
        obs, _, _, _, info = env.step(agent.act(obs))
        turnovers.append(info["turnover"])
        assert torch.all(info["weights"][:, 0] == 0.0)  # never any cash
        assert torch.allclose(info["weights"][firsts[-1]][:, 1:], torch.full((1, 3), 1 / 3, dtype=torch.float64))
    turnovers, firsts = torch.stack(turnovers), torch.stack(firsts)
    assert firsts[::3].all() and not firsts[1::3].any() and not firsts[2::3].any()
    assert torch.allclose(turnovers[firsts], torch.ones(6, dtype=torch.float64))
    assert torch.all(turnovers[~firsts] == 0.0)


def test_crp_turnover_at_each_bar_is_the_drift_back_to_equal_weights():
    market = synthetic_market(n_assets=4, n_periods=30, seed=7)
    env = BatchedPortfolioManagementEnv(market, num_envs=1, device="cpu", window=1, transaction_cost=0.002)
    infos = run_episode(CRP(env, device="cpu"), env)
    n = 4
    close = market.close
    y = close[1:] / close[:-1]
    # After a bar at equal weights the risky weights have drifted to d_i = y_i / sum_j y_j (costs shrink
    # every holding alike); restoring 1/N of what is left after the fee (mu, the self-financing root)
    # trades sum_i |1/N - d_i / mu| of the rebalanced book. The first bar buys from all cash: turnover 1.
    drifted = y / y.sum(axis=1, keepdims=True)
    target = np.array([0.0] + [1 / n] * n)
    drift_back = []
    for d in drifted[:len(infos) - 1]:
        mu = rebalance_factor(target, np.concatenate(([0.0], d)), 0.002)
        drift_back.append(np.abs(1 / n - d / mu).sum())
    expected = np.concatenate(([1.0], drift_back))
    turnover = np.array([float(i["turnover"][0]) for i in infos])
    np.testing.assert_allclose(turnover, expected, rtol=1e-9, atol=1e-12)
    for info in infos:
        np.testing.assert_array_equal(info["weights"][0].numpy(), [0.0] + [1 / n] * n)


def test_random_actions_are_uniform_samples_of_the_box_reproducible_by_seed():
    market = synthetic_market(n_assets=3, n_periods=30, seed=1)
    env = BatchedPortfolioManagementEnv(market, num_envs=512, device="cpu", window=2)
    obs = env.reset(seed=0)
    a, b, c = (RandomAgent(env, device="cpu", seed=s).act(obs) for s in (1, 1, 2))
    assert a.dtype == torch.float32 and a.shape == (512, 4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    bound = env.params.logit_bound
    assert torch.all(a >= -bound) and torch.all(a <= bound)
    # Uniform on [-10, 10]: mean 0, std 20 / sqrt(12) ~ 5.77; 2048 samples put both within a few
    # standard errors (0.13 and 0.06).
    assert abs(float(a.mean())) < 0.6
    assert abs(float(a.std()) - 20 / np.sqrt(12)) < 0.4


def test_buy_and_hold_in_trading_goes_long_with_all_the_cash_at_the_first_bar_and_never_trades_again():
    market = synthetic_market(n_assets=1, n_periods=40, seed=3)
    close = market.close[:, 0]
    cost = 0.001
    env = BatchedAlgorithmicTradingEnv(market, num_envs=1, device="cpu", window=1, long_only=False,
                                       transaction_cost=cost, initial_cash=1_000_000.0)
    infos = run_episode(BuyAndHold(env, device="cpu"), env)
    trades = np.array([float(i["trade"][0]) for i in infos])
    # Later bars re-apply the long target, which the env solves in float64: at most rounding-sized trades.
    assert trades[0] > 0 and np.all(np.abs(trades[1:]) <= 1e-12 * trades[0])
    # All the cash buys shares and their fee: S * close_0 * (1 + c) = V_0, then the shares are held.
    shares = 1_000_000.0 / (close[0] * (1 + cost))
    assert float(infos[-1]["position"][0]) == pytest.approx(shares, rel=1e-12)
    assert float(infos[-1]["portfolio_value"][0]) == pytest.approx(shares * close[-1], rel=1e-9)


def test_buy_and_hold_in_order_mode_buys_lots_until_the_cash_is_spent_then_holds():
    market = synthetic_market(n_assets=1, n_periods=40, seed=3)
    env = BatchedAlgorithmicTradingEnv(market, num_envs=1, device="cpu", window=1, action_mode="order",
                                       order_size=0.3, transaction_cost=0.001)
    infos = run_episode(BuyAndHold(env, device="cpu"), env)
    trades = np.array([float(i["trade"][0]) for i in infos])
    buying = np.flatnonzero(trades > 0)
    # Lots of 30% of the initial cash: 4 buys (the last one capped by the cash left), then nothing.
    assert list(buying) == [0, 1, 2, 3] and np.all(trades[4:] == 0.0)
    assert float(infos[-1]["cash"][0]) <= 1e-6 * float(infos[-1]["portfolio_value"][0])


def test_random_trading_actions_are_reproducible_indices_of_the_discrete_space():
    env = BatchedAlgorithmicTradingEnv(synthetic_market(n_assets=1, n_periods=40), num_envs=600, device="cpu",
                                       window=2, long_only=False)
    obs = env.reset(seed=0)
    a, b, c = (RandomAgent(env, device="cpu", seed=s).act(obs) for s in (1, 1, 2))
    assert a.dtype == torch.int64 and a.shape == (600,)
    assert torch.equal(a, b) and not torch.equal(a, c)
    counts = torch.bincount(a, minlength=3)
    assert counts.shape == (3,) and torch.all(counts > 150)  # ~200 each of 0, 1, 2


@pytest.mark.parametrize("side", ["sell", "buy"])
def test_twap_on_constant_prices_without_impact_trades_equal_slices_at_zero_shortfall(side):
    env = BatchedOrderExecutionEnv(one_asset_market([100.0] * 12), num_envs=1, device="cpu", window=1,
                                   horizon=7, quantity=700.0, impact=0.0, side=side)
    infos = run_episode(TWAP(env, device="cpu"), env)
    executed = np.array([float(i["executed"][0]) for i in infos])
    # The actions are float32 fractions 1/k: each slice is 100 shares to float32 rounding.
    np.testing.assert_allclose(executed, [100.0] * 7, rtol=1e-6)
    assert float(infos[-1]["remaining"][0]) == 0.0
    assert float(infos[-1]["shortfall"][0]) == pytest.approx(0.0, abs=1e-9)


def test_twap_with_linear_impact_pays_the_hand_computed_shortfall_of_equal_slices():
    # Sell 1000 shares at a constant 100 over 5 bars, impact 0.1, liquidity 1000 shares a bar: each
    # slice of 200 fills at 100 * (1 - 0.1 * 200 / 1000) = 98, a shortfall of 2 * 200 = 400 a bar.
    env = BatchedOrderExecutionEnv(one_asset_market([100.0] * 8), num_envs=1, device="cpu", window=1,
                                   horizon=5, quantity=1000.0, impact=0.1, bar_liquidity=1000.0, side="sell")
    infos = run_episode(TWAP(env, device="cpu"), env)
    assert len(infos) == 5
    np.testing.assert_allclose([float(i["exec_price"][0]) for i in infos], [98.0] * 5, rtol=1e-6)
    assert float(infos[-1]["shortfall"][0]) == pytest.approx(2000.0, rel=1e-6)


def test_portfolio_only_baselines_refuse_other_tasks_naming_themselves_and_the_space():
    one = synthetic_market(n_assets=1, n_periods=60, seed=0)
    trading = BatchedAlgorithmicTradingEnv(one, num_envs=1, device="cpu", window=2)
    execution = BatchedOrderExecutionEnv(one, num_envs=1, device="cpu", window=2)
    portfolio = BatchedPortfolioManagementEnv(synthetic_market(n_assets=2, n_periods=30), num_envs=1,
                                              device="cpu", window=2)
    with pytest.raises(ValueError, match=r"crp.*Discrete"):
        CRP(trading, device="cpu")
    with pytest.raises(ValueError, match=r"buy_and_hold.*Box"):
        BuyAndHold(execution, device="cpu")
    with pytest.raises(ValueError, match=r"twap.*Box"):
        TWAP(portfolio, device="cpu")
