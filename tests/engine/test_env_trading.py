"""The algorithmic-trading env and its batched torch twin."""
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import engine  # noqa: F401  (registers the gymnasium ids)
from engine.data import read_csv
from engine.data.market import MarketData
from engine.data.synthetic import synthetic_market
from engine.envs.trading import AlgorithmicTradingEnv, TradingParams
from engine.envs.trading_batched import BatchedAlgorithmicTradingEnv

ENV_ID = "TradeMaster/AlgorithmicTrading-v0"
BTC_DAILY = "/work/shared/data/btc/btc_daily.csv"


def hand_market(close, features=None) -> MarketData:
    """One ticker "A" with the given closes; features default to the bar index (so windows are easy
    to read)."""
    close = np.asarray(close, dtype=np.float64).reshape(-1, 1)
    t = len(close)
    if features is None:
        features = np.arange(t, dtype=np.float32).reshape(t, 1, 1)
    features = np.asarray(features, dtype=np.float32)
    return MarketData(
        dates=np.datetime64("2020-01-01", "ns") + np.arange(t) * np.timedelta64(1, "D"),
        tickers=("A",),
        prices={"close": close},
        features=features,
        feature_names=tuple(f"f{j}" for j in range(features.shape[2])),
        frequency="daily",
        periods_per_year=252.0,
        name="hand",
    )


def test_trading_env_passes_the_gymnasium_env_checker():
    with warnings.catch_warnings():
        for advice in ("not having a spec", "different from the unwrapped"):
            warnings.filterwarnings("ignore", message=f".*{advice}")
        check_env(AlgorithmicTradingEnv(window=4))
        check_env(AlgorithmicTradingEnv(window=4, long_only=False, episode_length=20))
        made = gym.make(ENV_ID, window=4, action_mode="order", long_only=False)
        check_env(made)
        check_env(made.unwrapped)


def test_make_builds_the_env_on_the_one_asset_synthetic_market():
    env = gym.make(ENV_ID)
    assert isinstance(env.unwrapped, AlgorithmicTradingEnv)
    assert env.unwrapped.market.n_assets == 1
    assert env.action_space == gym.spaces.Discrete(2)
    obs, info = env.reset(seed=0)
    layout = env.unwrapped.obs_layout
    assert (layout.window, layout.n_assets, layout.n_extra) == (10, 1, 2)
    assert obs.shape == (layout.size,) and obs.dtype == np.float32
    # An all-cash account: no position, everything in cash.
    assert obs[-2:].tolist() == [0.0, 1.0]
    assert info["portfolio_value"] == 1_000_000.0


def test_action_spaces_follow_mode_and_long_only():
    market = hand_market([100.0] * 5)
    assert AlgorithmicTradingEnv(market, window=1).action_space.n == 2
    assert AlgorithmicTradingEnv(market, window=1, long_only=False).action_space.n == 3
    assert AlgorithmicTradingEnv(market, window=1, action_mode="order").action_space.n == 3


def test_buy_hold_sell_with_costs_matches_the_hand_computed_account():
    # initial 1010 at cost 1%: going long at 100 buys Y with Y + 0.01 Y = 1010, so Y = 1000 = 10 shares.
    env = AlgorithmicTradingEnv(hand_market([100.0, 110.0, 121.0, 100.0]), window=1, initial_cash=1010.0,
                                transaction_cost=0.01)
    _, info = env.reset(seed=0)
    assert info["bar"] == 0 and info["portfolio_value"] == 1010.0

    obs, reward, terminated, truncated, info = env.step(1)
    assert info["trade"] == pytest.approx(10.0)
    assert info["position"] == pytest.approx(10.0)
    assert info["cost"] == pytest.approx(10.0)
    assert info["cash"] == pytest.approx(0.0, abs=1e-9) and info["cash"] >= 0.0
    assert info["price"] == 100.0
    assert info["portfolio_value"] == pytest.approx(1100.0)  # 10 shares at 110
    assert reward == pytest.approx(90.0 / 1010.0)
    assert obs[-2:] == pytest.approx([1.0, 0.0])
    assert info["bar"] == 1 and info["date"] == "2020-01-02T00:00:00"
    assert not terminated and not truncated

    # Staying long on a fully invested account trades nothing.
    _, reward, _, _, info = env.step(1)
    assert info["trade"] == pytest.approx(0.0, abs=1e-9) and info["cost"] == pytest.approx(0.0, abs=1e-9)
    assert info["portfolio_value"] == pytest.approx(1210.0)
    assert reward == pytest.approx(110.0 / 1010.0)

    # Going flat at 121 sells the 10 shares for 1210 and pays 12.1.
    obs, reward, terminated, truncated, info = env.step(0)
    assert info["trade"] == pytest.approx(-10.0)
    assert info["position"] == 0.0
    assert info["cost"] == pytest.approx(12.1)
    assert info["cash"] == pytest.approx(1197.9)
    assert info["portfolio_value"] == pytest.approx(1197.9)
    assert reward == pytest.approx(-12.1 / 1010.0)
    assert obs[-2:] == pytest.approx([0.0, 1.0])
    assert truncated and not terminated  # bar 3 is the last bar


def test_rewards_sum_to_the_profit_over_initial_cash():
    env = AlgorithmicTradingEnv(synthetic_market(n_assets=1, n_periods=60, seed=5), window=3,
                                long_only=False, initial_cash=5000.0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    total, done = 0.0, False
    while not done:
        _, reward, terminated, truncated, info = env.step(int(rng.integers(3)))
        total += reward
        done = terminated or truncated
    assert total == pytest.approx((info["portfolio_value"] - 5000.0) / 5000.0, rel=1e-9)


def test_short_exposure_holds_minus_the_net_value_in_shares():
    close = [100.0, 90.0, 95.0, 80.0, 85.0]
    env = AlgorithmicTradingEnv(hand_market(close), window=1, initial_cash=1010.0, transaction_cost=0.01,
                                long_only=False)
    env.reset(seed=0)
    # Short from flat: |Y| + 0.01 |Y| = 1010, so Y = -1000: sell 10 shares, receive 1000, pay 10.
    _, reward, _, _, info = env.step(0)
    assert info["position"] == pytest.approx(-10.0)
    assert info["cash"] == pytest.approx(2000.0)
    assert info["portfolio_value"] == pytest.approx(2000.0 - 900.0)
    assert reward == pytest.approx(90.0 / 1010.0)

    # Staying short rebalances to -1x of the value after costs: position value = -(V - cost).
    for action, expect_long in ((0, False), (2, True)):
        value, price = info["portfolio_value"], close[info["bar"]]
        _, _, _, _, info = env.step(action)
        after = value - info["cost"]
        assert info["cost"] == pytest.approx(0.01 * abs(info["trade"]) * price)
        target = after if expect_long else -after
        assert info["position"] * price == pytest.approx(target, rel=1e-12)
        if expect_long:
            # Long spends all the cash and no more.
            assert info["cash"] == pytest.approx(0.0, abs=1e-9) and info["cash"] >= 0.0
        else:
            assert info["cash"] == pytest.approx(2 * after, rel=1e-12)


def test_order_mode_caps_buys_at_the_cash_and_long_only_sells_at_the_holding():
    env = AlgorithmicTradingEnv(hand_market([100.0] * 9), window=1, initial_cash=1000.0, transaction_cost=0.25,
                                action_mode="order", order_size=0.5)
    env.reset(seed=0)
    # Lot = 500 of value. (action, shares traded, cash after, shares after), by hand:
    table = [
        (2, 5.0, 1000 - 500 - 125, 5.0),    # buy a full lot: 500 + 25% cost
        (2, 3.0, 0.0, 8.0),                 # 375 of cash buys 300 (+75 cost), not a full lot
        (2, 0.0, 0.0, 8.0),                 # no cash, no buy
        (1, 0.0, 0.0, 8.0),                 # hold
        (0, -5.0, 500 - 125, 3.0),          # sell a full lot
        (0, -3.0, 375 + 300 - 75, 0.0),     # only 3 shares left to sell
        (0, 0.0, 600.0, 0.0),               # long only: nothing to sell
    ]
    for action, trade, cash, shares in table:
        _, _, _, _, info = env.step(action)
        assert info["trade"] == pytest.approx(trade)
        assert info["cash"] == pytest.approx(cash, abs=1e-9)
        assert info["position"] == pytest.approx(shares)
        assert info["portfolio_value"] == pytest.approx(cash + shares * 100.0)


def test_order_mode_without_long_only_sells_into_a_short():
    env = AlgorithmicTradingEnv(hand_market([100.0] * 4), window=1, initial_cash=1000.0, transaction_cost=0.25,
                                action_mode="order", order_size=0.5, long_only=False)
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    assert info["position"] == pytest.approx(-5.0)
    assert info["cash"] == pytest.approx(1000 + 500 - 125)
    # Buying back covers with the short-sale cash.
    _, _, _, _, info = env.step(2)
    assert info["position"] == pytest.approx(0.0, abs=1e-12)
    assert info["cash"] == pytest.approx(1375 - 500 - 125)


@settings(max_examples=40, deadline=None)
@given(
    moves=st.lists(st.floats(-0.5, 0.5), min_size=3, max_size=12),
    actions=st.lists(st.integers(0, 2), min_size=12, max_size=12),
    mode=st.sampled_from(["target", "order"]),
    order_size=st.floats(0.05, 3.0),
    cost=st.floats(0.0, 0.5),
)
def test_long_only_never_holds_negative_shares_or_cash(moves, actions, mode, order_size, cost):
    close = 100.0 * np.cumprod([1.0] + [1.0 + m for m in moves])
    env = AlgorithmicTradingEnv(hand_market(close), window=1, action_mode=mode, order_size=order_size,
                                transaction_cost=cost)
    obs, _ = env.reset(seed=0)
    for a in actions:
        obs, _, terminated, truncated, info = env.step(a % env.action_space.n)
        assert info["position"] >= 0.0
        assert info["cash"] >= 0.0
        assert info["portfolio_value"] > 0.0
        assert env.observation_space.contains(obs)
        assert not terminated
        if truncated:
            break


def test_a_short_can_be_ruined_and_ends_the_episode():
    env = AlgorithmicTradingEnv(hand_market([100.0, 250.0, 260.0, 270.0]), window=1, long_only=False,
                                transaction_cost=0.0, initial_cash=1000.0)
    env.reset(seed=0)
    # Short 10 shares at 100, cash 2000; at 250 the 10 shares cost 2500 to buy back: V = -500.
    obs, reward, terminated, truncated, info = env.step(0)
    assert info["portfolio_value"] == pytest.approx(-500.0)
    assert reward == pytest.approx(-1.5)
    assert terminated and not truncated
    assert obs[-2:].tolist() == [0.0, 0.0]


def test_observation_at_bar_t_does_not_depend_on_later_bars():
    n, k = 30, 17
    base = synthetic_market(n_assets=1, n_periods=n, seed=2)
    close = base.close.copy()
    features = base.features.copy()
    close[k:] *= 3.0
    features[k:] = 9.0
    spiked = hand_market(close[:, 0], features)
    base = hand_market(base.close[:, 0], base.features)
    actions = np.random.default_rng(1).integers(0, 3, size=n)
    runs = []
    for market in (base, spiked):
        env = AlgorithmicTradingEnv(market, window=5, long_only=False)
        obs, info = env.reset(seed=0)
        seen = [(info["bar"], obs)]
        for a in actions:
            obs, _, terminated, truncated, info = env.step(int(a))
            seen.append((info["bar"], obs))
            if terminated or truncated:
                break
        runs.append(seen)
    compared = 0
    for (bar, a), (_, b) in zip(*runs):
        if bar < k:
            np.testing.assert_array_equal(a, b)
            compared += 1
        elif bar == k:
            assert not np.array_equal(a, b)
    assert compared == k - 4  # bars 4..k-1


def test_window_holds_bars_t_minus_w_plus_1_to_t():
    env = AlgorithmicTradingEnv(hand_market([100.0] * 8), window=3)
    obs, info = env.reset(seed=0)
    assert info["bar"] == 2
    assert obs[:3].tolist() == [0.0, 1.0, 2.0]  # the feature is the bar index
    obs, *_ = env.step(0)
    assert obs[:3].tolist() == [1.0, 2.0, 3.0]


def test_features_are_clipped_in_the_observation():
    features = np.array([[[-50.0]], [[3.0]], [[50.0]], [[0.0]]], dtype=np.float32)
    env = AlgorithmicTradingEnv(hand_market([1.0, 2.0, 3.0, 4.0], features), window=3)
    obs, _ = env.reset(seed=0)
    assert obs[:3].tolist() == [-10.0, 3.0, 10.0]


def test_episode_length_draws_random_starts_and_truncates():
    env = AlgorithmicTradingEnv(synthetic_market(n_assets=1, n_periods=60, seed=1), window=3, episode_length=7)
    starts = set()
    for seed in range(12):
        _, info = env.reset(seed=seed)
        starts.add(info["bar"])
        assert 2 <= info["bar"] <= 60 - 1 - 7
        for i in range(7):
            _, _, terminated, truncated, _ = env.step(1)
            assert not terminated
            assert truncated == (i == 6)
    assert len(starts) > 1
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=3)
    np.testing.assert_array_equal(a, b)


def test_a_ticker_picks_one_asset_of_a_wider_market():
    market = synthetic_market(n_assets=3, n_periods=40, seed=4)
    with pytest.raises(ValueError, match="algorithmic trading takes one asset; the market has 3 tickers"):
        AlgorithmicTradingEnv(market, window=3)
    with pytest.raises(ValueError, match="ticker 'NOPE'"):
        AlgorithmicTradingEnv(market, window=3, ticker="NOPE")
    env = AlgorithmicTradingEnv(market, window=3, ticker=market.tickers[1])
    np.testing.assert_array_equal(env.market.close[:, 0], market.close[:, 1])
    obs, _ = env.reset(seed=0)
    expected = np.clip(market.features[0:3, 1, :], -10, 10).reshape(-1)
    np.testing.assert_array_equal(obs[:-2], expected)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": 0}, "window"),
        ({"initial_cash": 0.0}, "initial_cash"),
        ({"transaction_cost": 1.0}, "transaction_cost"),
        ({"transaction_cost": -0.1}, "transaction_cost"),
        ({"action_mode": "both"}, "action_mode"),
        ({"order_size": 0.0}, "order_size"),
        ({"episode_length": 0}, "episode_length"),
        ({"windw": 3}, "windw"),
    ],
)
def test_bad_params_raise_errors_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TradingParams(**kwargs)
    with pytest.raises(ValueError, match=field):
        gym.make(ENV_ID, **kwargs)


def test_bad_ranges_and_actions_are_refused():
    market = hand_market([100.0] * 5)
    with pytest.raises(ValueError, match="window"):
        AlgorithmicTradingEnv(market, window=5)
    with pytest.raises(ValueError, match="start and end"):
        AlgorithmicTradingEnv(market, window=1, start=4)
    with pytest.raises(ValueError, match="either params or keyword"):
        AlgorithmicTradingEnv(market, params=TradingParams(window=1), window=2)
    env = AlgorithmicTradingEnv(market, window=1)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be one of"):
        env.step(2)
    with pytest.raises(ValueError, match="close prices"):
        AlgorithmicTradingEnv(hand_market([100.0, 0.0, 100.0]), window=1)


def run_single(env: AlgorithmicTradingEnv, actions: np.ndarray):
    """Step a single env through `actions`, resetting when an episode ends, as the batched twin does."""
    obs, _ = env.reset(seed=0)
    rows = []
    for a in actions:
        nxt, reward, terminated, truncated, info = env.step(int(a))
        final = nxt
        if terminated or truncated:
            nxt, _ = env.reset()
        rows.append((nxt, reward, terminated, truncated, info, final))
    return obs, rows


@pytest.mark.parametrize(
    "params",
    [
        TradingParams(window=3, transaction_cost=0.01),
        TradingParams(window=2, long_only=False, transaction_cost=0.02),
        TradingParams(window=3, action_mode="order", long_only=False, order_size=0.7),
        TradingParams(window=3, action_mode="order", order_size=0.3),
    ],
    ids=["target-long", "target-short", "order-short", "order-long"],
)
def test_batched_twin_matches_the_single_env_step_by_step(params):
    # Wild prices so shorts can be ruined (terminated) as well as run out of data (truncated).
    rng = np.random.default_rng(7)
    close = 100.0 * np.cumprod(np.r_[1.0, 1.0 + rng.uniform(-0.4, 0.6, size=13)])
    market = hand_market(close, rng.standard_normal((14, 1, 2)).astype(np.float32) * 6)
    b, steps = 4, 40
    actions = rng.integers(0, 3 if not (params.long_only and params.action_mode == "target") else 2, size=(steps, b))
    batched = BatchedAlgorithmicTradingEnv(market, num_envs=b, device="cpu", params=params)
    obs_b = batched.reset(seed=0)
    singles = [run_single(AlgorithmicTradingEnv(market, params=params), actions[:, i]) for i in range(b)]
    for i in range(b):
        np.testing.assert_array_equal(obs_b[i].numpy(), singles[i][0])
    ended = 0
    for k in range(steps):
        obs_b, reward_b, term_b, trunc_b, info_b = batched.step(torch.as_tensor(actions[k]))
        assert obs_b.dtype == torch.float32 and reward_b.dtype == torch.float32
        for i in range(b):
            obs, reward, terminated, truncated, info, final = singles[i][1][k]
            np.testing.assert_allclose(obs_b[i].numpy(), obs, rtol=1e-6, atol=1e-6)
            assert reward_b[i].item() == pytest.approx(reward, rel=1e-5, abs=1e-7)
            assert bool(term_b[i]) == terminated and bool(trunc_b[i]) == truncated
            for key in ("portfolio_value", "position", "cash", "trade", "price", "cost"):
                assert info_b[key][i].item() == pytest.approx(info[key], rel=1e-9, abs=1e-9), key
            if terminated or truncated:
                ended += 1
                np.testing.assert_allclose(info_b["final_obs"][i].numpy(), final, rtol=1e-6, atol=1e-6)
    assert ended >= b  # every copy went through at least one auto-reset


def test_batched_twin_draws_reproducible_random_starts():
    market = synthetic_market(n_assets=1, n_periods=80, seed=3)
    env = BatchedAlgorithmicTradingEnv(market, num_envs=6, device="cpu", window=4, episode_length=5)
    a = env.reset(seed=11)
    b = env.reset(seed=11)
    torch.testing.assert_close(a, b)
    for i in range(5):
        _, _, terminated, truncated, _ = env.step(torch.ones(6, dtype=torch.int64))
        assert not terminated.any()
        assert bool(truncated.all()) == (i == 4)
    with pytest.raises(ValueError, match="actions must have shape"):
        env.step(torch.ones(5, dtype=torch.int64))
    with pytest.raises(ValueError, match="num_envs"):
        BatchedAlgorithmicTradingEnv(market, num_envs=0, device="cpu")


def test_buy_and_hold_on_btc_daily_grows_as_the_price():
    market = read_csv(BTC_DAILY)
    env = AlgorithmicTradingEnv(market, window=10, transaction_cost=0.001)
    obs, info = env.reset(seed=0)
    t0 = info["bar"]
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(1)
        assert np.isfinite(obs).all() and env.observation_space.contains(obs)
        total += reward
        done = terminated or truncated
    assert truncated and info["bar"] == len(market) - 1
    # One purchase of V0 / (1 + c) worth of shares at close[t0], then held to the last close.
    close = market.close[:, 0]
    expected = 1_000_000.0 / 1.001 * close[-1] / close[t0]
    assert info["portfolio_value"] == pytest.approx(expected, rel=1e-9)
    assert total == pytest.approx(expected / 1_000_000.0 - 1.0, rel=1e-9)
