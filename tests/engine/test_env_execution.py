"""The order-execution env and its batched torch twin."""
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import engine  # noqa: F401  (registers the gymnasium ids)
from engine.data import read_csv
from engine.data.market import MarketData
from engine.data.synthetic import synthetic_market
from engine.envs.execution import ExecutionParams, OrderExecutionEnv
from engine.envs.execution_batched import BatchedOrderExecutionEnv

ENV_ID = "TradeMaster/OrderExecution-v0"
BTC_DAILY = "/work/shared/data/btc/btc_daily.csv"


def hand_market(close, features=None, volume=None) -> MarketData:
    """One ticker "A" with the given closes (and volume when given); features default to the bar index."""
    close = np.asarray(close, dtype=np.float64).reshape(-1, 1)
    t = len(close)
    if features is None:
        features = np.arange(t, dtype=np.float32).reshape(t, 1, 1)
    features = np.asarray(features, dtype=np.float32)
    prices = {"close": close}
    if volume is not None:
        prices["volume"] = np.asarray(volume, dtype=np.float64).reshape(-1, 1)
    return MarketData(
        dates=np.datetime64("2020-01-01", "ns") + np.arange(t) * np.timedelta64(1, "D"),
        tickers=("A",),
        prices=prices,
        features=features,
        feature_names=tuple(f"f{j}" for j in range(features.shape[2])),
        frequency="daily",
        periods_per_year=252.0,
        name="hand",
    )


def run(env: OrderExecutionEnv, fractions, seed=0):
    """Step through `fractions` until the order ends; returns reset info and the per-step results."""
    _, info0 = env.reset(seed=seed)
    steps = []
    for f in fractions:
        obs, reward, terminated, truncated, info = env.step(np.array([f], dtype=np.float32))
        steps.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return info0, steps


def test_execution_env_passes_the_gymnasium_env_checker():
    with warnings.catch_warnings():
        for advice in ("not having a spec", "different from the unwrapped"):
            warnings.filterwarnings("ignore", message=f".*{advice}")
        check_env(OrderExecutionEnv(window=4, horizon=5))
        check_env(OrderExecutionEnv(window=4, horizon=5, side="buy", random_start=True))
        made = gym.make(ENV_ID, window=4)
        check_env(made)
        check_env(made.unwrapped)


def test_make_builds_the_env_on_the_one_asset_synthetic_market():
    env = gym.make(ENV_ID)
    assert isinstance(env.unwrapped, OrderExecutionEnv)
    assert env.unwrapped.market.n_assets == 1
    assert env.action_space == gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    obs, info = env.reset(seed=0)
    layout = env.unwrapped.obs_layout
    assert (layout.window, layout.n_assets, layout.n_extra) == (10, 1, 3)
    assert obs.shape == (layout.size,) and obs.dtype == np.float32
    # Nothing executed, the whole horizon ahead, the price at arrival.
    assert obs[-3:].tolist() == [1.0, 1.0, 0.0]
    assert info["remaining"] == 1000.0 and info["bar"] == 9


def test_twap_on_constant_prices_without_impact_has_zero_shortfall():
    env = OrderExecutionEnv(hand_market([50.0] * 8), window=1, quantity=1000.0, horizon=5, impact=0.0)
    _, info0 = env.reset(seed=0)
    assert info0["arrival_price"] == 50.0
    fractions = [1 / 5, 1 / 4, 1 / 3, 1 / 2, 1.0]
    _, steps = run(env, fractions)
    assert len(steps) == 5
    for k, (obs, reward, terminated, truncated, info) in enumerate(steps):
        # The fractions reach the env as float32, hence 1e-6.
        assert info["executed"] == pytest.approx(200.0, rel=1e-6)
        assert info["exec_price"] == 50.0
        assert reward == 0.0 and info["shortfall"] == 0.0
        assert info["remaining"] == pytest.approx(1000.0 - 200.0 * (k + 1), rel=1e-6, abs=1e-9)
        assert obs[-2] == pytest.approx((5 - k - 1) / 5)
        assert terminated == (k == 4) and not truncated
    assert steps[-1][4]["remaining"] == 0.0
    assert steps[-1][4]["proceeds"] == pytest.approx(50_000.0)


def test_single_bar_sell_pays_the_linear_impact_by_hand():
    # 1000 shares into a bar that absorbs 2000: participation 0.5, impact 0.1 -> the fill is 5% below
    # the close: 47.5. Shortfall (50 - 47.5) * 1000 = 2500, plus a 0.1% fee of 47.5.
    env = OrderExecutionEnv(hand_market([50.0, 60.0, 70.0]), window=1, quantity=1000.0, horizon=1, impact=0.1,
                            use_volume=False, bar_liquidity=2000.0, transaction_cost=0.001)
    _, steps = run(env, [0.0])  # the horizon's only step executes everything whatever the action
    obs, reward, terminated, truncated, info = steps[0]
    assert info["executed"] == 1000.0
    assert info["exec_price"] == pytest.approx(47.5)
    assert info["cost"] == pytest.approx(47.5)
    assert info["shortfall"] == pytest.approx(2547.5)
    assert info["proceeds"] == pytest.approx(47_500.0 - 47.5)
    assert reward == pytest.approx(-2547.5 / 50_000.0)
    assert info["remaining"] == 0.0 and terminated and not truncated
    assert info["bar"] == 1 and info["date"] == "2020-01-02T00:00:00"
    # Standing at bar 1: nothing left, no step left, the price 20% above arrival.
    assert obs[-3:] == pytest.approx([0.0, 0.0, 0.2])


def test_buy_side_is_the_mirror_of_the_sell_side():
    market = hand_market([50.0, 60.0, 70.0])
    env = OrderExecutionEnv(market, window=1, side="buy", quantity=1000.0, horizon=1, impact=0.1,
                            use_volume=False, bar_liquidity=2000.0, transaction_cost=0.001)
    _, steps = run(env, [0.0])
    _, reward, terminated, _, info = steps[0]
    # The buy fills 5% above the close: 52.5; it overpays 2500 and pays a fee of 52.5.
    assert info["exec_price"] == pytest.approx(52.5)
    assert info["shortfall"] == pytest.approx(2552.5)
    assert info["proceeds"] == pytest.approx(-(52_500.0 + 52.5))
    assert reward == pytest.approx(-2552.5 / 50_000.0)
    assert terminated


def test_without_impact_or_fees_a_buy_gains_what_a_sell_loses():
    market = synthetic_market(n_assets=1, n_periods=40, seed=8)
    fractions = np.random.default_rng(0).uniform(0, 0.5, size=12)
    shortfalls = {}
    for side in ("sell", "buy"):
        env = OrderExecutionEnv(market, window=3, side=side, horizon=12, impact=0.0)
        _, steps = run(env, fractions)
        shortfalls[side] = steps[-1][4]["shortfall"]
    assert shortfalls["buy"] == pytest.approx(-shortfalls["sell"], rel=1e-12)
    assert shortfalls["sell"] != 0.0


def test_volume_sets_the_liquidity_of_each_bar():
    market = hand_market([100.0] * 5, volume=[500.0, 4000.0, 1000.0, 1000.0, 1000.0])
    env = OrderExecutionEnv(market, window=2, quantity=800.0, horizon=2, impact=0.5)
    _, steps = run(env, [0.5, 0.0])
    # Bar 1: 400 of 4000 -> 100 * (1 - 0.5 * 0.1) = 95. Bar 2: 400 of 1000 -> 100 * (1 - 0.5 * 0.4) = 80.
    assert [s[4]["exec_price"] for s in steps] == pytest.approx([95.0, 80.0])
    assert steps[-1][4]["shortfall"] == pytest.approx(400 * 5.0 + 400 * 20.0)
    env = OrderExecutionEnv(market, window=2, quantity=800.0, horizon=2, impact=0.5, use_volume=False)
    _, steps = run(env, [0.5, 0.0])
    # Without volume a bar absorbs the order's quantity: 400 of 800 -> 100 * (1 - 0.25) = 75.
    assert [s[4]["exec_price"] for s in steps] == pytest.approx([75.0, 75.0])


def test_rewards_sum_to_minus_the_shortfall_over_the_arrival_notional():
    market = synthetic_market(n_assets=1, n_periods=60, seed=4)
    env = OrderExecutionEnv(market, window=5, quantity=5e6, horizon=15, impact=0.3, transaction_cost=0.002)
    fractions = np.random.default_rng(2).uniform(0, 1, size=15)
    info0, steps = run(env, fractions)
    total = sum(s[1] for s in steps)
    info = steps[-1][4]
    assert info["remaining"] == 0.0
    # Independently: IS = sum_k q_k (arrival - p_k) + fees, for a sell.
    q = np.array([s[4]["executed"] for s in steps])
    p = np.array([s[4]["exec_price"] for s in steps])
    fees = 0.002 * q * p
    shortfall = float(np.sum(q * (info0["arrival_price"] - p) + fees))
    assert q.sum() == pytest.approx(5e6)
    assert info["shortfall"] == pytest.approx(shortfall, rel=1e-9)
    assert total == pytest.approx(-shortfall / (5e6 * info0["arrival_price"]), rel=1e-9)
    assert info["proceeds"] == pytest.approx(float(np.sum(q * p - fees)), rel=1e-12)


def test_the_last_step_of_the_horizon_executes_the_remainder():
    env = OrderExecutionEnv(hand_market([10.0] * 10), window=1, quantity=300.0, horizon=4, impact=0.0)
    _, steps = run(env, [0.0] * 10)
    assert len(steps) == 4
    assert [s[4]["executed"] for s in steps] == [0.0, 0.0, 0.0, 300.0]
    assert [s[2] for s in steps] == [False, False, False, True]
    assert not any(s[3] for s in steps)


def test_trading_everything_early_completes_the_order_early():
    env = OrderExecutionEnv(hand_market([10.0] * 10), window=1, quantity=300.0, horizon=6, impact=0.0)
    _, steps = run(env, [0.5, 1.0, 0.3])
    assert len(steps) == 2
    assert [s[4]["executed"] for s in steps] == [150.0, 150.0]
    assert steps[-1][2] and steps[-1][4]["remaining"] == 0.0


def test_out_of_range_fractions_are_clipped():
    env = OrderExecutionEnv(hand_market([10.0] * 10), window=1, quantity=300.0, horizon=6, impact=0.0)
    _, steps = run(env, [-3.0, 0.0])
    assert steps[0][4]["executed"] == 0.0
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(np.array([7.0], dtype=np.float32))
    assert info["executed"] == 300.0 and terminated


def test_observation_at_bar_t_does_not_depend_on_later_bars():
    n, k = 30, 12
    base = synthetic_market(n_assets=1, n_periods=n, seed=2)
    close, features, volume = base.close.copy(), base.features.copy(), base.prices["volume"].copy()
    close[k:] *= 3.0
    features[k:] = 9.0
    volume[k:] = 1.0
    spiked = hand_market(close[:, 0], features, volume[:, 0])
    plain = hand_market(base.close[:, 0], base.features, base.prices["volume"][:, 0])
    fractions = np.random.default_rng(1).uniform(0, 0.3, size=20)
    observed = []
    for market in (plain, spiked):
        env = OrderExecutionEnv(market, window=5, horizon=20, start=2)
        obs, info = env.reset(seed=0)
        seen = [(info["bar"], obs)]
        for f in fractions:
            obs, _, terminated, _, info = env.step(np.array([f], dtype=np.float32))
            seen.append((info["bar"], obs))
            if terminated:
                break
        observed.append(seen)
    compared = 0
    for (bar, a), (_, b) in zip(*observed):
        if bar < k:
            np.testing.assert_array_equal(a, b)
            compared += 1
        elif bar == k:
            assert not np.array_equal(a, b)
    assert compared == k - 4  # bars 4..k-1


def test_random_start_draws_from_bars_that_fit_a_whole_horizon():
    market = synthetic_market(n_assets=1, n_periods=40, seed=1)
    env = OrderExecutionEnv(market, window=3, horizon=10, random_start=True)
    starts = set()
    for seed in range(15):
        info0, steps = run(env, [0.2] * 10, seed=seed)
        starts.add(info0["bar"])
        assert 2 <= info0["bar"] <= 40 - 1 - 10
        assert info0["arrival_price"] == market.close[info0["bar"], 0]
        assert len(steps) == 10 and steps[-1][2]
    assert len(starts) > 1
    assert run(env, [], seed=4)[0]["bar"] == run(env, [], seed=4)[0]["bar"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": 0}, "window"),
        ({"side": "hold"}, "side"),
        ({"quantity": 0.0}, "quantity"),
        ({"horizon": 0}, "horizon"),
        ({"impact": -0.1}, "impact"),
        ({"bar_liquidity": 0.0}, "bar_liquidity"),
        ({"transaction_cost": 1.0}, "transaction_cost"),
    ],
)
def test_bad_params_raise_errors_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ExecutionParams(**kwargs)


def test_unknown_params_such_as_episode_length_are_refused():
    with pytest.raises(ValueError, match="episode_length"):
        ExecutionParams(episode_length=5)
    with pytest.raises(ValueError, match="horizn"):
        gym.make(ENV_ID, horizn=5)


def test_bad_markets_and_actions_are_refused():
    market = hand_market([10.0] * 6)
    # Six bars: an order placed at bar 0 can trade at bars 0..4 and end standing at bar 5.
    with pytest.raises(ValueError, match="horizon 6 does not fit"):
        OrderExecutionEnv(market, window=1, horizon=6)
    assert len(run(OrderExecutionEnv(market, window=1, horizon=5), [0.0] * 5)[1]) == 5
    with pytest.raises(ValueError, match="window"):
        OrderExecutionEnv(market, window=6, horizon=1)
    with pytest.raises(ValueError, match="use_volume"):
        OrderExecutionEnv(hand_market([10.0] * 6, volume=[5.0, 0.0, 5.0, 5.0, 5.0, 5.0]), window=1, horizon=2)
    OrderExecutionEnv(hand_market([10.0] * 6, volume=[5.0, 0.0, 5.0, 5.0, 5.0, 5.0]), window=1, horizon=2,
                      use_volume=False)
    wide = synthetic_market(n_assets=2, n_periods=40, seed=0)
    with pytest.raises(ValueError, match="order execution takes one asset; the market has 2 tickers"):
        OrderExecutionEnv(wide, window=3)
    env = OrderExecutionEnv(wide, window=3, ticker=wide.tickers[1])
    assert env.reset(seed=0)[1]["arrival_price"] == wide.close[2, 1]
    env = OrderExecutionEnv(market, window=1, horizon=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be"):
        env.step(np.array([np.nan], dtype=np.float32))
    with pytest.raises(ValueError, match="action must be"):
        env.step(np.array([0.1, 0.2], dtype=np.float32))


def run_single(env: OrderExecutionEnv, actions: np.ndarray):
    """Step a single env through `actions`, resetting when an episode ends, as the batched twin does."""
    obs, _ = env.reset(seed=0)
    rows = []
    for a in actions:
        nxt, reward, terminated, truncated, info = env.step(a)
        final = nxt
        if terminated or truncated:
            nxt, _ = env.reset()
        rows.append((nxt, reward, terminated, truncated, info, final))
    return obs, rows


@pytest.mark.parametrize(
    "params",
    [
        ExecutionParams(window=3, horizon=4, quantity=5e5, impact=0.2, transaction_cost=0.001),
        ExecutionParams(window=2, horizon=6, side="buy", quantity=300.0, use_volume=False, bar_liquidity=250.0,
                        impact=0.8),
    ],
    ids=["sell-volume", "buy-fixed-liquidity"],
)
def test_batched_twin_matches_the_single_env_step_by_step(params):
    market = synthetic_market(n_assets=1, n_periods=20, seed=6)
    b, steps = 4, 25
    rng = np.random.default_rng(3)
    # Some copies trade everything at once (fraction 1) so episodes end at different steps.
    actions = np.where(rng.random((steps, b, 1)) < 0.15, 1.0, rng.uniform(0, 0.6, size=(steps, b, 1)))
    actions = actions.astype(np.float32)
    batched = BatchedOrderExecutionEnv(market, num_envs=b, device="cpu", params=params)
    obs_b = batched.reset(seed=0)
    singles = [run_single(OrderExecutionEnv(market, params=params), actions[:, i]) for i in range(b)]
    for i in range(b):
        np.testing.assert_array_equal(obs_b[i].numpy(), singles[i][0])
    ended = 0
    for k in range(steps):
        obs_b, reward_b, term_b, trunc_b, info_b = batched.step(torch.as_tensor(actions[k]))
        assert obs_b.dtype == torch.float32 and reward_b.dtype == torch.float32
        assert not trunc_b.any()
        for i in range(b):
            obs, reward, terminated, truncated, info, final = singles[i][1][k]
            np.testing.assert_allclose(obs_b[i].numpy(), obs, rtol=1e-6, atol=1e-6)
            assert reward_b[i].item() == pytest.approx(reward, rel=1e-5, abs=1e-9)
            assert bool(term_b[i]) == terminated
            for key in ("executed", "exec_price", "remaining", "shortfall", "proceeds"):
                assert info_b[key][i].item() == pytest.approx(info[key], rel=1e-9, abs=1e-9), key
            if terminated:
                ended += 1
                np.testing.assert_allclose(info_b["final_obs"][i].numpy(), final, rtol=1e-6, atol=1e-6)
    assert ended >= 2 * b  # every copy went through auto-resets


def test_batched_twin_draws_reproducible_random_starts():
    market = synthetic_market(n_assets=1, n_periods=60, seed=3)
    env = BatchedOrderExecutionEnv(market, num_envs=8, device="cpu", window=4, horizon=5, random_start=True)
    a = env.reset(seed=11)
    b = env.reset(seed=11)
    torch.testing.assert_close(a, b)
    for i in range(5):
        _, _, terminated, truncated, info = env.step(torch.zeros(8, 1))
        assert bool(terminated.all()) == (i == 4) and not truncated.any()
    # Each copy executed its whole order.
    assert torch.equal(info["remaining"], torch.zeros(8, dtype=torch.float64))
    with pytest.raises(ValueError, match="actions must have shape"):
        env.step(torch.zeros(8))
    with pytest.raises(ValueError, match="num_envs"):
        BatchedOrderExecutionEnv(market, num_envs=0, device="cpu")


def test_twap_on_btc_daily_costs_the_average_price_gap_to_arrival():
    market = read_csv(BTC_DAILY)
    horizon, quantity = 30, 10.0
    env = OrderExecutionEnv(market, window=10, quantity=quantity, horizon=horizon, impact=0.0, start=1000)
    info0, steps = run(env, [1.0 / (horizon - k) for k in range(horizon)])
    assert len(steps) == horizon and steps[-1][2]
    for obs, *_ in steps:
        assert np.isfinite(obs).all() and env.observation_space.contains(obs)
    close = market.close[1000:1000 + horizon, 0]
    # A sell of Q/H per bar at the close: shortfall = Q * (arrival - mean close over the horizon).
    expected = quantity * (close[0] - close.mean())
    assert info0["arrival_price"] == close[0]
    # The TWAP fractions reach the env as float32, so each child order is Q/H to ~1e-7.
    assert steps[-1][4]["shortfall"] == pytest.approx(expected, rel=1e-6)
    assert sum(s[1] for s in steps) == pytest.approx(-expected / (quantity * close[0]), rel=1e-6)
