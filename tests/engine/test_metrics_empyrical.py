"""engine.metrics agrees with empyrical-reloaded on real and random return series.

Where our definitions deliberately differ (NaN input is refused, zero denominators give NaN instead
of +-inf) the series here avoid the difference; test_metrics.py covers those cases.
"""
import empyrical
import empyrical.stats
import numpy as np
import pandas as pd
import pytest

from engine import metrics

DJ30_TEST = "/work/shared/data/dj30/test.csv"
BTC_DAILY = "/work/shared/data/btc/btc_daily.csv"


def _close_returns(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path, index_col=0)
    closes = frame.pivot(index="date", columns="tic", values="adjcp" if "adjcp" in frame else "close")
    return closes.sort_index().pct_change().iloc[1:]


@pytest.fixture(scope="module")
def dj30_returns() -> pd.DataFrame:
    returns = _close_returns(DJ30_TEST)
    assert not returns.isna().any().any()
    return returns


@pytest.fixture(scope="module")
def series(dj30_returns) -> dict:
    """name -> (returns, periods_per_year)."""
    rng = np.random.default_rng(7)
    equal_weight = dj30_returns.mean(axis=1)
    return {
        "dj30 equal weight": (equal_weight, 252),
        "dj30 AAPL": (dj30_returns["AAPL"], 252),
        "btc daily": (_close_returns(BTC_DAILY)["BTC"].iloc[:500], 365),
        "random normal": (pd.Series(rng.normal(0.0005, 0.01, 400)), 252),
        "random heavy tailed": (pd.Series(0.02 * rng.standard_t(3, 300)).clip(lower=-0.5), 52),
        "random short": (rng.normal(-0.001, 0.02, 5), 12),
    }


CASES = ["dj30 equal weight", "dj30 AAPL", "btc daily", "random normal", "random heavy tailed", "random short"]


@pytest.mark.parametrize("case", CASES)
def test_every_single_series_metric_matches_empyrical(series, case):
    returns, ppy = series[case]
    ours = metrics.performance_report(returns, periods_per_year=ppy)
    arr = np.asarray(returns, dtype=np.float64)
    theirs = {
        "total_return": empyrical.cum_returns_final(arr),
        "annual_return": empyrical.annual_return(arr, annualization=ppy),
        "annual_volatility": empyrical.annual_volatility(arr, annualization=ppy),
        "sharpe": empyrical.sharpe_ratio(arr, annualization=ppy),
        "sortino": empyrical.sortino_ratio(arr, annualization=ppy),
        "max_drawdown": empyrical.max_drawdown(arr),
        "calmar": empyrical.calmar_ratio(arr, annualization=ppy),
    }
    for key, expected in theirs.items():
        assert ours[key] == pytest.approx(float(expected), rel=1e-10), key
    # The series passed as a pandas Series and as a numpy array give the same numbers.
    assert metrics.performance_report(arr, periods_per_year=ppy) == ours


@pytest.mark.parametrize("case", CASES)
def test_drawdown_series_matches_empyrical(series, case):
    returns, _ = series[case]
    arr = np.asarray(returns, dtype=np.float64)
    expected = empyrical.stats.drawdown_series(arr)
    np.testing.assert_allclose(metrics.drawdown_series(arr), expected, rtol=1e-10, atol=1e-15)


def test_alpha_beta_of_each_dj30_stock_against_the_equal_weight_index_matches_empyrical(dj30_returns):
    index = dj30_returns.mean(axis=1).to_numpy()
    for tic in ["AAPL", "MSFT", "JPM", "WMT"]:
        stock = dj30_returns[tic].to_numpy()
        alpha, beta = metrics.alpha_beta(stock, index, periods_per_year=252)
        e_alpha, e_beta = empyrical.alpha_beta(stock, index, annualization=252)
        assert beta == pytest.approx(e_beta, rel=1e-10), tic
        assert alpha == pytest.approx(e_alpha, rel=1e-10), tic


def test_alpha_beta_of_a_random_series_matches_empyrical():
    rng = np.random.default_rng(11)
    bench = rng.normal(0.0003, 0.01, 250)
    strat = 1.3 * bench + rng.normal(0.0002, 0.004, 250)
    alpha, beta = metrics.alpha_beta(strat, bench, periods_per_year=365)
    e_alpha, e_beta = empyrical.alpha_beta(strat, bench, annualization=365)
    assert (alpha, beta) == (pytest.approx(e_alpha, rel=1e-10), pytest.approx(e_beta, rel=1e-10))
