"""The portfolio-management env and its batched torch twin."""
import dataclasses
import math
import warnings

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import engine  # noqa: F401  (registers the gymnasium ids)
from engine.data.market import MarketData
from engine.data.synthetic import synthetic_market
from engine.envs.portfolio import PortfolioManagementEnv, PortfolioParams, rebalance_factor
from engine.envs.portfolio_batched import BatchedPortfolioManagementEnv

DJ30_TRAIN = "/work/shared/data/dj30/train.csv"
DJ30_FEATURES = ("zopen", "zhigh", "zlow", "zadjcp", "zclose", "zd_5", "zd_10", "zd_15", "zd_20", "zd_25", "zd_30")
ENV_ID = "TradeMaster/PortfolioManagement-v0"


def hand_market(close, features) -> MarketData:
    close = np.asarray(close, dtype=np.float64)
    features = np.asarray(features, dtype=np.float32)
    t, n = close.shape
    return MarketData(
        dates=np.datetime64("2020-01-01", "ns") + np.arange(t) * np.timedelta64(1, "D"),
        tickers=tuple(f"A{i}" for i in range(n)),
        prices={"close": close},
        features=features,
        feature_names=tuple(f"f{j}" for j in range(features.shape[2])),
        frequency="daily",
        periods_per_year=252.0,
        name="hand",
    )


def dj30_slice(stop: int) -> MarketData:
    """The first `stop` bars of DJ30's train split, pivoted to a panel here (independent of the
    engine's readers)."""
    df = pd.read_csv(DJ30_TRAIN, index_col=0, parse_dates=["date"])
    dates = np.sort(df["date"].unique())[:stop]
    df = df[df["date"].isin(dates)]
    close = df.pivot(index="date", columns="tic", values="close").sort_index()
    tickers = list(close.columns)
    features = np.stack(
        [df.pivot(index="date", columns="tic", values=c).loc[close.index, tickers].to_numpy() for c in DJ30_FEATURES],
        axis=-1,
    )
    return MarketData(
        dates=close.index.to_numpy().astype("datetime64[ns]"),
        tickers=tuple(tickers),
        prices={"close": close.to_numpy(np.float64)},
        features=features.astype(np.float32),
        feature_names=DJ30_FEATURES,
        frequency="daily",
        periods_per_year=252.0,
        name="dj30",
    )


@pytest.fixture(scope="module")
def small_market() -> MarketData:
    return synthetic_market(n_assets=3, n_periods=40, seed=3)


def test_portfolio_env_passes_the_gymnasium_env_checker():
    with warnings.catch_warnings():
        # Advice, not failures: check_env recommends a [-1, 1] action box (the logits' box is the
        # env's contract), and says what it cannot check on an env without a spec or in a wrapper.
        for advice in ("symmetric and normalized space", "not having a spec", "different from the unwrapped"):
            warnings.filterwarnings("ignore", message=f".*{advice}")
        check_env(PortfolioManagementEnv(window=4))
        made = gym.make(ENV_ID, window=4, long_only=False, episode_length=20)
        check_env(made)
        check_env(made.unwrapped)


def test_make_builds_the_env_on_the_synthetic_market_with_keyword_params():
    env = gym.make(ENV_ID, window=3, transaction_cost=0.0)
    assert isinstance(env.unwrapped, PortfolioManagementEnv)
    assert env.unwrapped.params == PortfolioParams(window=3, transaction_cost=0.0)
    n, f = env.unwrapped.market.n_assets, env.unwrapped.market.n_features
    assert env.observation_space.shape == (3 * n * f + n + 1,)
    assert env.action_space.shape == (n + 1,)
    assert env.unwrapped.obs_layout.size == env.observation_space.shape[0]


def test_two_steps_on_a_hand_made_market_give_the_hand_computed_accounting():
    # 2 assets, 3 bars; asset 1 goes 10 -> 11 -> 12.1, asset 2 goes 20 -> 18 -> 19.8.
    features = np.arange(6, dtype=np.float32).reshape(3, 2, 1)
    market = hand_market([[10.0, 20.0], [11.0, 18.0], [12.1, 19.8]], features)
    env = PortfolioManagementEnv(market, window=1, transaction_cost=0.01, initial_cash=1_000_000)
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0.0, 1.0, 1.0, 0.0, 0.0])  # features of bar 0, all cash
    assert info["bar"] == 0

    # Logits [0, ln 2, 0] -> softmax [1/4, 1/2, 1/4]. Buying 3/4 of what is left after the fee:
    # mu = 1 - 0.01 * 0.75 * mu, so mu = 1 / 1.0075 and the fee is 1e6 * (1 - mu).
    obs, reward, terminated, truncated, info = env.step(np.array([0.0, math.log(2.0), 0.0]))
    mu = 1.0 / 1.0075
    np.testing.assert_allclose(info["weights"], [0.25, 0.5, 0.25], rtol=1e-12)
    assert info["turnover"] == pytest.approx(0.75, rel=1e-12)  # 3/4 of the value after the fee
    assert info["cost"] == pytest.approx(1e6 * 0.0075 / 1.0075, rel=1e-12)  # 7,444.17
    # The fee is exactly 1% of what was bought: the account a broker would leave.
    assert info["cost"] == pytest.approx(0.01 * 0.75 * 1e6 * mu, rel=1e-12)
    np.testing.assert_allclose(info["price_relatives"], [1.0, 1.1, 0.9], rtol=1e-12)
    # growth = 0.25 + 0.5 * 1.1 + 0.25 * 0.9 = 1.025; V' = 1e6 * mu * 1.025
    v1 = 1e6 * mu * 1.025
    assert info["portfolio_value"] == pytest.approx(v1, rel=1e-12)
    assert reward == pytest.approx(math.log(v1 / 1e6), rel=1e-12)
    assert info["return"] == pytest.approx(v1 / 1e6 - 1.0, rel=1e-9)
    assert (terminated, truncated) == (False, False)
    assert info["bar"] == 1 and info["date"].startswith("2020-01-02")
    drifted = np.array([0.25, 0.55, 0.225]) / 1.025
    np.testing.assert_allclose(obs, np.concatenate(([2.0, 3.0], drifted)), rtol=1e-6)

    # Cash logit at the bound -> cash pinned to exactly 0, the rest split equally. Asset 1 is sold
    # down and asset 2 bought up to half of the value after fees each: the fee is 1% of
    # (d1 - mu/2) + (mu/2 - d2) = d1 - d2 of the value, whatever mu is.
    obs, reward, terminated, truncated, info = env.step(np.array([-10.0, 0.0, 0.0]))
    np.testing.assert_array_equal(info["weights"], [0.0, 0.5, 0.5])
    mu2 = 1.0 - 0.01 * 0.325 / 1.025
    assert info["turnover"] == pytest.approx(0.325 / 1.025 / mu2, rel=1e-12)
    assert info["cost"] == pytest.approx(v1 * 0.01 * 0.325 / 1.025, rel=1e-12)
    # both assets rise 10%
    v2 = (v1 - v1 * 0.01 * 0.325 / 1.025) * 1.1
    assert info["portfolio_value"] == pytest.approx(v2, rel=1e-12)
    assert reward == pytest.approx(math.log(v2 / v1), rel=1e-12)
    assert (terminated, truncated) == (False, True)  # bar 2 is the last bar
    np.testing.assert_allclose(obs[2:], [0.0, 0.5, 0.5], rtol=1e-7)


def test_long_short_weights_scale_logits_by_the_bound_and_cap_gross_exposure_at_one():
    market = hand_market([[10.0, 20.0], [11.0, 18.0], [12.1, 19.8]], np.zeros((3, 2, 1)))
    env = PortfolioManagementEnv(market, window=1, long_only=False, logit_bound=10.0)
    env.reset(seed=0)
    # |0.2| + |-0.3| < 1: weights are the scaled logits, cash 1 - (0.2 - 0.3) = 1.1; cash logit unused.
    _, _, _, _, info = env.step(np.array([7.0, 2.0, -3.0]))
    np.testing.assert_allclose(info["weights"], [1.1, 0.2, -0.3], rtol=1e-12)
    env.reset(seed=0)
    # |0.5| + |-1| = 1.5: divided by 1.5 -> [1/3, -2/3], cash 4/3.
    _, _, _, _, info = env.step(np.array([0.0, 5.0, -10.0]))
    np.testing.assert_allclose(info["weights"], [4 / 3, 1 / 3, -2 / 3], rtol=1e-12)


def test_pinned_logits_get_exactly_zero_weight_and_all_pinned_means_equal_weights():
    market = hand_market([[10.0, 20.0], [11.0, 18.0], [12.1, 19.8]], np.zeros((3, 2, 1)))
    env = PortfolioManagementEnv(market, window=1)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([-10.0, 3.0, -10.0], dtype=np.float32))
    np.testing.assert_array_equal(info["weights"], [0.0, 1.0, 0.0])
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.full(3, -10.0, dtype=np.float32))
    np.testing.assert_allclose(info["weights"], [1 / 3, 1 / 3, 1 / 3], rtol=1e-15)


def test_holding_the_drifted_equal_weights_at_zero_cost_is_buy_and_hold():
    market = synthetic_market(n_assets=4, n_periods=60, seed=7)
    env = PortfolioManagementEnv(market, window=5, transaction_cost=0.0, initial_cash=1_000.0)
    env.reset(seed=0)
    weights = np.array([0.0, 0.25, 0.25, 0.25, 0.25])
    truncated, steps = False, 0
    while not truncated:
        # softmax(log d) = d when cash is pinned (d_0 = 0): the action re-targets the drifted weights.
        logits = np.concatenate(([-10.0], np.log(weights[1:])))
        _, _, terminated, truncated, info = env.step(logits)
        assert not terminated
        y = info["price_relatives"]
        weights = info["weights"] * y / (info["weights"] @ y)
        steps += 1
    first, last = env.bars.first, env.bars.end - 1
    assert steps == last - first
    expected = 1_000.0 * np.mean(market.close[last] / market.close[first])
    assert info["portfolio_value"] == pytest.approx(expected, rel=1e-12)


def test_a_short_wiped_out_by_a_rise_is_ruin_in_both_envs():
    # Short all of it at 10, then the price triples: the account owes more than it holds.
    market = hand_market([[10.0], [10.0], [30.0], [30.0]], np.zeros((4, 1, 1)))
    params = PortfolioParams(window=1, long_only=False, transaction_cost=0.9)
    all_in, all_short = np.array([0.0, 10.0]), np.array([0.0, -10.0])
    env = PortfolioManagementEnv(market, params=params)
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(all_in)  # buys with what is left after a 90% fee: mu = 1/1.9
    assert not terminated and info["portfolio_value"] == pytest.approx(1e6 / 1.9)
    _, reward, terminated, truncated, _ = env.step(all_short)
    assert (terminated, truncated) == (True, False)
    assert reward == pytest.approx(math.log(1e-9))

    batched = BatchedPortfolioManagementEnv(market, num_envs=2, device="cpu", params=params)
    start_obs = batched.reset(seed=0)
    batched.step(torch.tensor(np.stack([all_in, all_in]), dtype=torch.float32))
    flip_first = torch.tensor(np.stack([all_short, all_in]), dtype=torch.float32)
    obs, reward, terminated, truncated, _ = batched.step(flip_first)
    assert terminated.tolist() == [True, False] and truncated.tolist() == [False, False]
    assert reward[0].item() == pytest.approx(math.log(1e-9), rel=1e-6)
    torch.testing.assert_close(obs[0], start_obs[0])  # the ruined copy was reset


def test_the_rebalance_factor_is_the_self_financing_root():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 8))
        w = rng.dirichlet(np.ones(n + 1))
        d = rng.dirichlet(np.ones(n + 1))
        c = float(rng.choice([0.0, 1e-4, 0.001, 0.05, 0.5]))
        mu = rebalance_factor(w, d, c)
        assert mu == pytest.approx(1.0 - c * np.abs(w[1:] * mu - d[1:]).sum(), abs=1e-14)
        batched = BatchedPortfolioManagementEnv(synthetic_market(n_assets=n, n_periods=40), num_envs=1,
                                                device="cpu", transaction_cost=c)
        as_rows = batched.rebalance_factor(torch.tensor(w[None]), torch.tensor(d[None]))
        assert as_rows.item() == pytest.approx(mu, abs=1e-15)


def run_single(env: PortfolioManagementEnv, actions: np.ndarray):
    """Step one single env through `actions` (steps, N+1), resetting it when it ends, like the
    batched twin does."""
    out = {"obs": [], "reward": [], "value": [], "terminated": [], "truncated": [], "final_obs": []}
    obs, _ = env.reset(seed=0)
    out["obs"].append(obs)
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out["final_obs"].append(obs if terminated or truncated else None)
        if terminated or truncated:
            obs, _ = env.reset()
        for key, value in (("obs", obs), ("reward", reward), ("value", info["portfolio_value"]),
                           ("terminated", terminated), ("truncated", truncated)):
            out[key].append(value)
    return out


@pytest.mark.parametrize("long_only", [True, False])
@pytest.mark.parametrize("market_name", ["synthetic", "dj30"])
def test_batched_twin_matches_the_single_env_step_by_step_across_auto_reset(small_market, market_name, long_only):
    market = small_market if market_name == "synthetic" else dj30_slice(40)
    params = PortfolioParams(window=5, transaction_cost=0.005, long_only=long_only)
    n_copies = 3
    batched = BatchedPortfolioManagementEnv(market, num_envs=n_copies, device="cpu", params=params)
    steps_per_episode = batched.bars.end - 1 - batched.bars.first
    n_steps = steps_per_episode + 10  # one full episode, the auto-reset, and ten more steps
    rng = np.random.default_rng(42)
    actions = rng.normal(scale=4.0, size=(n_steps, n_copies, market.n_assets + 1)).astype(np.float32)
    actions[rng.random(actions.shape) < 0.2] = -params.logit_bound  # exercise pinned weights too
    singles = [run_single(PortfolioManagementEnv(market, params=params), actions[:, i]) for i in range(n_copies)]

    obs = batched.reset(seed=0)
    for i in range(n_copies):
        np.testing.assert_allclose(obs[i].numpy(), singles[i]["obs"][0], atol=1e-6)
    ended = 0
    for k in range(n_steps):
        obs, reward, terminated, truncated, info = batched.step(torch.from_numpy(actions[k]))
        for i, ref in enumerate(singles):
            np.testing.assert_allclose(obs[i].numpy(), ref["obs"][k + 1], atol=1e-6)
            assert reward[i].item() == pytest.approx(ref["reward"][k], rel=1e-5, abs=1e-7)
            assert info["portfolio_value"][i].item() == pytest.approx(ref["value"][k], rel=1e-9)
            assert bool(terminated[i]) == ref["terminated"][k]
            assert bool(truncated[i]) == ref["truncated"][k]
            if ref["final_obs"][k] is not None:
                np.testing.assert_allclose(info["final_obs"][i].numpy(), ref["final_obs"][k], atol=1e-6)
                ended += 1
    assert ended == n_copies  # every copy went through one auto-reset


def spiked(market: MarketData, bar: int) -> MarketData:
    """A copy of `market` whose asset 0 jumps 5x and whose features jump by 7 at `bar`."""
    close = market.close.copy()
    close[bar:, 0] *= 5.0
    features = market.features.copy()
    features[bar] += 7.0
    return dataclasses.replace(market, prices={**market.prices, "close": close}, features=features)


def test_nothing_observed_or_rewarded_before_a_spike_bar_depends_on_it(small_market):
    spike = 20
    params = PortfolioParams(window=5, long_only=False)
    actions = np.random.default_rng(0).normal(scale=3.0, size=(30, small_market.n_assets + 1)).astype(np.float32)
    runs = [run_single(PortfolioManagementEnv(m, params=params), actions)
            for m in (small_market, spiked(small_market, spike))]
    first = PortfolioManagementEnv(small_market, params=params).bars.first
    for k in range(len(actions)):  # 30 steps: the episode (35 steps) does not end
        bar = first + k  # obs[k] is observed at this bar, and reward[k] is of the decision taken there
        if bar < spike:
            np.testing.assert_array_equal(runs[0]["obs"][k], runs[1]["obs"][k])
        if bar < spike - 1:
            assert runs[0]["reward"][k] == runs[1]["reward"][k]
    # The spike is seen as soon as it is allowed to be: in the observation at its bar, and in the
    # reward of the decision taken the bar before.
    assert not np.array_equal(runs[0]["obs"][spike - first], runs[1]["obs"][spike - first])
    assert runs[0]["reward"][spike - 1 - first] != runs[1]["reward"][spike - 1 - first]


def test_batched_observations_and_rewards_before_a_spike_bar_do_not_depend_on_it(small_market):
    spike = 20
    params = PortfolioParams(window=5)
    actions = torch.randn(30, 2, small_market.n_assets + 1, generator=torch.Generator().manual_seed(0))
    obs_runs, reward_runs = [], []
    for m in (small_market, spiked(small_market, spike)):
        env = BatchedPortfolioManagementEnv(m, num_envs=2, device="cpu", params=params)
        obs, rewards = [env.reset(seed=0)], []
        for a in actions:
            o, r, _, _, _ = env.step(a)
            obs.append(o)
            rewards.append(r)
        obs_runs.append(torch.stack(obs))
        reward_runs.append(torch.stack(rewards))
    n_before = spike - env.bars.first  # observations at bars first .. spike-1
    torch.testing.assert_close(obs_runs[0][:n_before], obs_runs[1][:n_before], rtol=0, atol=0)
    torch.testing.assert_close(reward_runs[0][:n_before - 1], reward_runs[1][:n_before - 1], rtol=0, atol=0)
    assert not torch.equal(obs_runs[0][n_before], obs_runs[1][n_before])
    assert not torch.equal(reward_runs[0][n_before - 1], reward_runs[1][n_before - 1])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"transaction_cost": -0.01}, "transaction_cost"),
        ({"transaction_cost": 1.0}, "transaction_cost"),
        ({"window": 0}, "window"),
        ({"window": 41}, "window"),  # the market has 40 bars
        ({"logit_bound": 0.0}, "logit_bound"),
        ({"initial_cash": -5.0}, "initial_cash"),
        ({"episode_length": 0}, "episode_length"),
    ],
)
def test_bad_params_are_refused_with_an_error_naming_the_field(small_market, kwargs, field):
    with pytest.raises(ValueError, match=field):
        PortfolioManagementEnv(small_market, **kwargs)
    with pytest.raises(ValueError, match=field):
        BatchedPortfolioManagementEnv(small_market, num_envs=2, device="cpu", **kwargs)


def test_a_window_that_leaves_no_step_in_the_range_is_refused(small_market):
    # start=30, end=35 holds bars 30..34; a window of 36 makes the first decision bar 35.
    with pytest.raises(ValueError, match="window 36"):
        PortfolioManagementEnv(small_market, start=30, end=35, window=36)
    # History before `start` fills the window, so a window longer than the range itself is fine.
    env = PortfolioManagementEnv(small_market, start=30, end=35, window=10)
    assert env.bars.first == 30


def test_a_bad_range_or_params_given_twice_are_refused(small_market):
    with pytest.raises(ValueError, match="start"):
        PortfolioManagementEnv(small_market, start=10, end=11)
    with pytest.raises(ValueError, match="end"):
        PortfolioManagementEnv(small_market, end=41)
    with pytest.raises(ValueError, match="window"):
        PortfolioManagementEnv(small_market, params=PortfolioParams(), window=3)
    with pytest.raises(ValueError, match="num_envs"):
        BatchedPortfolioManagementEnv(small_market, num_envs=0, device="cpu")


def test_random_starts_are_reproducible_by_seed_and_episodes_last_episode_length_steps(small_market):
    env = PortfolioManagementEnv(small_market, window=5, episode_length=8)
    starts = [env.reset(seed=s)[1]["bar"] for s in range(20)]
    assert starts == [env.reset(seed=s)[1]["bar"] for s in range(20)]
    assert len(set(starts)) > 1
    assert all(4 <= b <= 40 - 1 - 8 for b in starts)
    env.reset(seed=5)
    ends = [env.step(env.action_space.sample())[3] for _ in range(8)]
    assert ends == [False] * 7 + [True]

    batched = BatchedPortfolioManagementEnv(small_market, num_envs=16, device="cpu", window=5, episode_length=8)
    first = batched.reset(seed=5)
    torch.testing.assert_close(batched.reset(seed=5), first, rtol=0, atol=0)
    assert not torch.equal(batched.reset(seed=6), first)
    assert len({tuple(row[:5].tolist()) for row in first}) > 1  # the copies start at different bars
    zeros = torch.zeros(16, small_market.n_assets + 1)
    truncations = [batched.step(zeros)[3] for _ in range(8)]
    assert not any(t.any() for t in truncations[:7]) and truncations[7].all()


def test_an_episode_length_longer_than_the_range_runs_from_the_first_bar_to_the_end(small_market):
    env = PortfolioManagementEnv(small_market, window=5, episode_length=1000)
    assert {env.reset(seed=s)[1]["bar"] for s in range(5)} == {4}
    steps, truncated = 0, False
    while not truncated:
        _, _, _, truncated, info = env.step(np.zeros(small_market.n_assets + 1, dtype=np.float32))
        steps += 1
    assert steps == 40 - 1 - 4 and info["bar"] == 39


def test_a_target_within_the_no_trade_band_is_not_traded_and_one_outside_is():
    from engine.data.synthetic import synthetic_market as make

    market = make(n_assets=3, n_periods=20, seed=2)
    env = PortfolioManagementEnv(market, window=2, transaction_cost=0.01, no_trade_band=1e-4)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([-10.0, 0.0, 0.0, 0.0], dtype=np.float32))  # equal weights, no cash
    drifted = info["weights"] * info["price_relatives"] / (info["weights"] @ info["price_relatives"])
    # 5e-5 away from the drifted weights: inside the band, so the book just drifts.
    nudged = drifted + np.array([0.0, 5e-5, -5e-5, 0.0])
    _, _, _, _, info = env.step(np.log(np.maximum(nudged, 1e-12)).astype(np.float32))
    assert info["turnover"] == 0.0 and info["cost"] == 0.0
    np.testing.assert_allclose(info["weights"], drifted, rtol=1e-12)
    # Equal weights again are far outside it: traded, and charged.
    _, _, _, _, info = env.step(np.array([-10.0, 0.0, 0.0, 0.0], dtype=np.float32))
    assert info["turnover"] > 1e-4 and info["cost"] > 0.0
