"""synthetic_market: deterministic per seed, consistent prices, the requested correlation, and a
planted signal that predicts the next bar's return (and nothing predictive when none is planted)."""
import numpy as np
import pytest

from engine.data import detect_frequency, synthetic_market


def next_log_returns(market):
    """log(close[t+1] / close[t]) aligned with bar t, shape (T-1, N)."""
    return np.diff(np.log(market.close), axis=0)


def test_synthetic_market_is_deterministic_for_a_seed():
    a, b = synthetic_market(seed=7, signal_strength=0.5), synthetic_market(seed=7, signal_strength=0.5)
    assert np.array_equal(a.dates, b.dates)
    for key in a.prices:
        assert np.array_equal(a.prices[key], b.prices[key])
    assert np.array_equal(a.features, b.features)


def test_synthetic_market_differs_between_seeds():
    assert not np.allclose(synthetic_market(seed=1).close, synthetic_market(seed=2).close)


def test_synthetic_market_has_the_requested_shapes_and_default_features():
    market = synthetic_market(n_assets=3, n_periods=200)
    assert market.close.shape == (200, 3) and len(market.tickers) == 3 and len(set(market.tickers)) == 3
    assert market.features.shape == (200, 3, 11) and market.features.dtype == np.float32
    assert "signal" not in market.feature_names
    assert set(market.prices) == {"open", "high", "low", "close", "adjcp", "volume"}
    assert np.isfinite(market.features).all()


def test_synthetic_market_prices_are_consistent_bars():
    market = synthetic_market(n_assets=4, n_periods=2000, seed=3)
    p = market.prices
    assert (p["low"] > 0).all() and (p["volume"] > 0).all()
    assert (p["high"] >= np.maximum(p["open"], p["close"])).all()
    assert (p["low"] <= np.minimum(p["open"], p["close"])).all()
    assert np.array_equal(p["adjcp"], p["close"])
    assert len(set(np.round(market.close[0], 6))) == 4  # different starting prices
    assert (market.close[0] > 40).all() and (market.close[0] < 160).all()


def test_synthetic_market_daily_dates_are_business_days():
    market = synthetic_market(n_periods=30, start="2021-01-01")
    weekdays = (market.dates.astype("datetime64[D]").astype(np.int64) + 3) % 7
    assert (weekdays < 5).all() and str(market.dates[0])[:10] == "2021-01-01"
    assert str(market.dates[1])[:10] == "2021-01-04"  # Friday, then Monday


@pytest.mark.parametrize("frequency, ppy", [("daily", 252), ("hourly", 1638), ("minute", 98280), ("weekly", 52),
                                            ("monthly", 12)])
def test_synthetic_market_dates_match_the_requested_frequency(frequency, ppy):
    market = synthetic_market(n_periods=300, frequency=frequency)
    assert detect_frequency(market.dates) == frequency == market.frequency
    assert market.periods_per_year == ppy and market.meta["asset_class"] == "equity"


@pytest.mark.parametrize("correlation", [0.0, 0.3, 0.7])
def test_synthetic_market_returns_have_the_requested_correlation(correlation):
    market = synthetic_market(n_assets=4, n_periods=6000, seed=1, correlation=correlation)
    corr = np.corrcoef(next_log_returns(market).T)
    mean_pairwise = corr[np.triu_indices(4, k=1)].mean()
    assert abs(mean_pairwise - correlation) < 0.05, mean_pairwise


def test_synthetic_market_switches_among_at_least_three_regimes_with_different_volatility():
    market = synthetic_market(n_assets=3, n_periods=6000, seed=2)
    regime, r = market.meta["regime"][:-1], next_log_returns(market)
    assert len(set(regime.tolist())) >= 3
    vols = [r[regime == k].std() for k in range(len(market.meta["regime_names"]))]
    assert max(vols) > 2 * min(vols)


def test_synthetic_market_planted_signal_predicts_the_next_return():
    market = synthetic_market(n_assets=5, n_periods=3000, seed=4, signal_strength=1.0)
    signal = market.features[:-1, :, market.feature_names.index("signal")]
    corr = np.corrcoef(signal.ravel(), next_log_returns(market).ravel())[0, 1]
    assert corr > 0.5, corr  # s / sqrt(1 + s^2) = 0.71 for the shocks, a little less for the returns


def test_synthetic_market_without_a_signal_has_no_predictive_feature():
    market = synthetic_market(n_assets=5, n_periods=3000, seed=4)
    r = next_log_returns(market).ravel()
    for i, name in enumerate(market.feature_names):
        x = market.features[:-1, :, i].ravel()
        if x.std() > 0:
            assert abs(np.corrcoef(x, r)[0, 1]) < 0.1, name


def test_synthetic_market_prices_do_not_depend_on_the_signal_strength():
    assert np.array_equal(synthetic_market(seed=9).close, synthetic_market(seed=9, signal_strength=2.0).close)


def test_synthetic_market_signal_rewards_overweighting_high_signal_assets():
    market = synthetic_market(n_assets=5, n_periods=1000, seed=6, signal_strength=1.0)
    signal = market.features[:-1, :, market.feature_names.index("signal")]
    simple = market.close[1:] / market.close[:-1] - 1
    equal = np.log1p(simple.mean(axis=1)).sum()
    top = np.log1p(simple[np.arange(len(simple)), signal.argmax(axis=1)]).sum()
    assert top > equal + 1.0, (top, equal)


def test_synthetic_market_features_are_causal():
    """Changing the last bars' prices must not change any feature of an earlier bar."""
    from engine.data.features import price_features

    market = synthetic_market(n_assets=2, n_periods=100, seed=0)
    _, before = price_features(market.prices)
    bumped = {k: v.copy() for k, v in market.prices.items()}
    for v in bumped.values():
        v[60:] *= 1.5
    _, after = price_features(bumped)
    assert np.array_equal(before[:60], after[:60]) and not np.array_equal(before[60:], after[60:])


@pytest.mark.parametrize("kwargs, parameter", [
    ({"n_assets": 0}, "n_assets"), ({"n_periods": 1}, "n_periods"), ({"frequency": "yearly"}, "frequency"),
    ({"correlation": 1.0}, "correlation"), ({"n_assets": 3, "correlation": -0.6}, "correlation"),
    ({"signal_strength": -1.0}, "signal_strength"),
])
def test_synthetic_market_rejects_bad_parameters_naming_them(kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        synthetic_market(**kwargs)


def test_synthetic_market_with_one_asset_works_for_single_asset_tasks():
    market = synthetic_market(n_assets=1, n_periods=50, signal_strength=1.0)
    assert market.close.shape == (50, 1) and market.features.shape == (50, 1, 12)
