"""engine.metrics: hand-checked values, the documented edge cases, and invariants (hypothesis)."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from engine import metrics

nan = math.nan


def is_nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


# --- known values ----------------------------------------------------------------------------------
# returns [0.1, -0.05, 0.02]: wealth 1 -> 1.1 -> 1.1 * 0.95 = 1.045 -> 1.045 * 1.02 = 1.0659.
#   total_return = 0.0659; with 3 periods per year the 3 returns are one year, so annual = total;
#   with 6 per year they are half a year: 1.0659 ** 2 - 1 = 0.13614281.
#   peak 1.1 then 1.045: max_drawdown = 1.045 / 1.1 - 1 = -0.05; calmar (ppy 3) = 0.0659 / 0.05.
#   bars 2 and 3 are below the 1.1 peak (1.0659 < 1.1): max_drawdown_duration = 2.
#   two of three non-zero returns are positive: win_rate = 2/3.
KNOWN = [0.1, -0.05, 0.02]


def test_total_and_annual_return_of_a_hand_computed_series():
    assert metrics.total_return(KNOWN) == pytest.approx(0.0659, rel=1e-12)
    assert metrics.annual_return(KNOWN, periods_per_year=3) == pytest.approx(0.0659, rel=1e-12)
    assert metrics.annual_return(KNOWN, periods_per_year=6) == pytest.approx(0.13614281, rel=1e-12)


def test_drawdown_metrics_of_a_hand_computed_series():
    np.testing.assert_allclose(metrics.drawdown_series(KNOWN), [0.0, -0.05, 1.0659 / 1.1 - 1], rtol=1e-12)
    assert metrics.max_drawdown(KNOWN) == pytest.approx(-0.05, rel=1e-12)
    assert metrics.calmar_ratio(KNOWN, periods_per_year=3) == pytest.approx(0.0659 / 0.05, rel=1e-12)
    assert metrics.max_drawdown_duration(KNOWN) == 2.0
    assert metrics.win_rate(KNOWN) == pytest.approx(2 / 3)


def test_volatility_and_sharpe_of_a_two_return_series():
    # [0.01, 0.03]: mean 0.02, sample std sqrt((0.01**2 + 0.01**2) / 1) = 0.01 * sqrt(2);
    # 4 periods per year: volatility 0.01 * sqrt(2) * 2, sharpe 0.02 / (0.01 * sqrt(2)) * 2 = 2 * sqrt(2).
    assert metrics.annual_volatility([0.01, 0.03], periods_per_year=4) == pytest.approx(0.02 * math.sqrt(2))
    assert metrics.sharpe_ratio([0.01, 0.03], periods_per_year=4) == pytest.approx(2 * math.sqrt(2))


def test_sortino_averages_squared_shortfalls_over_every_period():
    # [0.03, -0.01]: mean 0.01 -> 0.04 a year (ppy 4); downside sqrt((0 + 0.01**2) / 2) = 0.01 / sqrt(2),
    # annualised 0.01 / sqrt(2) * 2; sortino = 0.04 / (0.02 / sqrt(2)) = 2 * sqrt(2).
    assert metrics.sortino_ratio([0.03, -0.01], periods_per_year=4) == pytest.approx(2 * math.sqrt(2))


@pytest.mark.parametrize(
    "returns, duration",
    [
        ([-0.1], 1.0),  # the starting value 1 is a peak
        ([0.01, 0.0, 0.02], 0.0),  # a flat bar at the peak is not below it
        ([-0.1, 0.05, 0.2, -0.01, -0.01, 0.5], 2.0),  # 0.9, 0.945 | peak 1.134 | 1.1227, 1.1114 | 1.667
        ([0.1, -0.1, 0.05, 0.05], 3.0),  # 1.1 | 0.99, 1.0395, 1.0915: a run still open at the end counts
        ([-0.5, 1.0, -0.1], 1.0),  # 0.5 | back to exactly 1.0, not below | 0.9
    ],
)
def test_max_drawdown_duration_counts_the_longest_run_below_a_previous_peak(returns, duration):
    assert metrics.max_drawdown_duration(returns) == duration


def test_win_rate_ignores_flat_bars():
    assert metrics.win_rate([0.01, 0.0, 0.0, -0.02, 0.03]) == pytest.approx(2 / 3)


def test_alpha_beta_of_a_leveraged_copy_of_the_benchmark_plus_a_constant():
    # r = 2 b + 0.001 exactly: beta = 2, and r - beta b = 0.001 every bar, so alpha = 1.001 ** 252 - 1.
    bench = np.array([0.01, -0.01, 0.02, 0.0, -0.005])
    alpha, beta = metrics.alpha_beta(2 * bench + 0.001, bench, periods_per_year=252)
    assert beta == pytest.approx(2.0, rel=1e-12)
    assert alpha == pytest.approx(1.001**252 - 1, rel=1e-9)


def test_returns_from_values_divides_each_value_by_the_previous_one():
    np.testing.assert_allclose(metrics.returns_from_values([100.0, 110.0, 99.0, 0.0]), [0.1, -0.1, -1.0])
    assert metrics.returns_from_values([100.0]).size == 0


def test_performance_report_holds_every_metric_as_a_plain_float():
    report = metrics.performance_report(pd.Series(KNOWN), periods_per_year=3)
    assert set(report) == {"total_return", "annual_return", "annual_volatility", "sharpe", "sortino",
                           "max_drawdown", "calmar", "max_drawdown_duration", "win_rate", "n_periods"}
    assert all(type(v) is float for v in report.values())
    assert report["n_periods"] == 3.0
    assert report["max_drawdown"] == pytest.approx(-0.05)
    assert report["sharpe"] == metrics.sharpe_ratio(KNOWN, periods_per_year=3)


# --- edge cases (as decided in the module docstring) ------------------------------------------------
ALL_METRICS = {
    "total_return": lambda r: metrics.total_return(r),
    "annual_return": lambda r: metrics.annual_return(r, periods_per_year=252),
    "annual_volatility": lambda r: metrics.annual_volatility(r, periods_per_year=252),
    "sharpe": lambda r: metrics.sharpe_ratio(r, periods_per_year=252),
    "sortino": lambda r: metrics.sortino_ratio(r, periods_per_year=252),
    "max_drawdown": lambda r: metrics.max_drawdown(r),
    "calmar": lambda r: metrics.calmar_ratio(r, periods_per_year=252),
    "max_drawdown_duration": lambda r: metrics.max_drawdown_duration(r),
    "win_rate": lambda r: metrics.win_rate(r),
}


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    # "never a silent inf from dividing by zero": a numpy divide/invalid warning fails the test.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("name", ALL_METRICS)
def test_every_metric_of_an_empty_series_is_nan(name):
    assert is_nan(ALL_METRICS[name]([]))


def test_performance_report_of_an_empty_series_is_nan_but_counts_zero_periods():
    report = metrics.performance_report(np.array([]), periods_per_year=252)
    assert report.pop("n_periods") == 0.0
    assert all(is_nan(v) for v in report.values())


def test_one_return_defines_the_path_metrics_but_not_the_dispersion_ones():
    one = [-0.1]
    assert metrics.total_return(one) == pytest.approx(-0.1)
    assert metrics.annual_return(one, periods_per_year=1) == pytest.approx(-0.1)
    assert metrics.max_drawdown(one) == pytest.approx(-0.1)
    assert metrics.calmar_ratio(one, periods_per_year=1) == pytest.approx(-1.0)
    assert metrics.win_rate(one) == 0.0
    for name in ("annual_volatility", "sharpe", "sortino"):
        assert is_nan(ALL_METRICS[name](one)), name
    assert all(is_nan(x) for x in metrics.alpha_beta(one, [0.01], periods_per_year=252))


def test_constant_returns_have_zero_volatility_and_an_undefined_sharpe():
    # 0.001 cannot be represented exactly, so a naive std is ~1e-19, not 0, and mean / std explodes.
    constant = [0.001] * 10
    assert metrics.annual_volatility(constant, periods_per_year=252) == 0.0
    assert is_nan(metrics.sharpe_ratio(constant, periods_per_year=252))


def test_returns_so_small_their_variance_underflows_have_an_undefined_sharpe():
    # Found by hypothesis: the squares of 1e-170 underflow to 0, so the sample std is exactly 0.
    assert is_nan(metrics.sharpe_ratio([0.0, 4.6e-170], periods_per_year=252))


def test_a_series_that_never_loses_has_undefined_sortino_and_calmar():
    gains = [0.01, 0.02, 0.0, 0.03]
    assert is_nan(metrics.sortino_ratio(gains, periods_per_year=252))
    assert metrics.max_drawdown(gains) == 0.0
    assert is_nan(metrics.calmar_ratio(gains, periods_per_year=252))
    assert metrics.max_drawdown_duration(gains) == 0.0


def test_an_idle_strategy_has_no_win_rate_and_no_ratios():
    flat = np.zeros(20)
    report = metrics.performance_report(flat, periods_per_year=252)
    assert report["total_return"] == 0.0 and report["annual_return"] == 0.0
    assert report["annual_volatility"] == 0.0 and report["max_drawdown"] == 0.0
    for key in ("sharpe", "sortino", "calmar", "win_rate"):
        assert is_nan(report[key]), key


def test_alpha_beta_against_a_constant_benchmark_is_nan():
    alpha, beta = metrics.alpha_beta([0.01, -0.02, 0.03], [0.001] * 3, periods_per_year=252)
    assert is_nan(alpha) and is_nan(beta)


def test_alpha_beta_against_a_benchmark_constant_up_to_rounding_is_nan():
    # A curve growing 0.01 % a bar: its returns differ only by float rounding (~1e-16), a variance
    # far below empyrical's 1e-30 floor, so beta would be rounding noise divided by rounding noise.
    bench = metrics.returns_from_values(100.0 * 1.0001 ** np.arange(50))
    assert len(set(bench.tolist())) > 1  # really not constant, or this test would prove nothing new
    alpha, beta = metrics.alpha_beta(np.linspace(-0.01, 0.01, 49), bench, periods_per_year=252)
    assert is_nan(alpha) and is_nan(beta)


def test_a_ruined_account_has_a_drawdown_of_minus_one_and_an_annual_return_of_minus_one():
    ruin = [0.1, -1.0]
    assert metrics.max_drawdown(ruin) == -1.0
    assert metrics.annual_return(ruin, periods_per_year=252) == -1.0


def test_a_negative_final_value_has_no_real_annual_return():
    assert is_nan(metrics.annual_return([0.1, -1.5], periods_per_year=252))
    assert metrics.total_return([0.1, -1.5]) == pytest.approx(1.1 * -0.5 - 1)


def test_an_annual_return_too_large_for_a_float_is_inf_and_calmar_turns_it_into_nan():
    # 1.1 ** (525600 / 2) overflows a float: one hour of minute bars extrapolated to a year.
    minute_bars = [0.1, -0.01]
    assert metrics.annual_return(minute_bars, periods_per_year=525600) == math.inf
    assert is_nan(metrics.calmar_ratio(minute_bars, periods_per_year=525600))


@pytest.mark.parametrize("bad", [nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", ALL_METRICS)
def test_a_non_finite_return_is_refused_naming_its_position(name, bad):
    with pytest.raises(ValueError, match=r"returns\[2\] is"):
        ALL_METRICS[name](pd.Series([0.01, 0.02, bad, 0.03]))


def test_performance_report_refuses_a_nan_return_naming_its_position():
    with pytest.raises(ValueError, match=r"returns\[1\] is nan"):
        metrics.performance_report(np.array([0.01, nan]), periods_per_year=252)


def test_alpha_beta_refuses_a_nan_benchmark_return_and_a_length_mismatch():
    with pytest.raises(ValueError, match=r"benchmark_returns\[0\] is nan"):
        metrics.alpha_beta([0.01, 0.02], [nan, 0.01], periods_per_year=252)
    with pytest.raises(ValueError, match="benchmark_returns has 3 returns"):
        metrics.alpha_beta([0.01, 0.02], [0.01, 0.0, 0.02], periods_per_year=252)


def test_two_dimensional_returns_are_refused():
    with pytest.raises(ValueError, match="returns must be 1-D"):
        metrics.total_return(np.zeros((3, 2)))


@pytest.mark.parametrize("ppy", [0, -252, nan, math.inf, "daily"])
def test_periods_per_year_must_be_a_positive_finite_number(ppy):
    with pytest.raises(ValueError, match="periods_per_year"):
        metrics.sharpe_ratio([0.01, 0.02], periods_per_year=ppy)


def test_returns_from_values_refuses_a_non_positive_value_before_the_last():
    with pytest.raises(ValueError, match=r"values\[1\] is 0.0"):
        metrics.returns_from_values([100.0, 0.0, 50.0])
    with pytest.raises(ValueError, match=r"values\[2\] is nan"):
        metrics.returns_from_values([100.0, 90.0, nan])


# --- invariants ------------------------------------------------------------------------------------
# Returns of a long-only account: no worse than -100 %, and small enough that products stay finite.
returns_lists = st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=1, max_size=60)


@given(returns_lists, st.floats(min_value=0.0, max_value=0.5))
def test_raising_every_return_never_worsens_the_max_drawdown(returns, raise_by):
    raised = [r + raise_by for r in returns]
    assert metrics.max_drawdown(raised) >= metrics.max_drawdown(returns) - 1e-12


@given(returns_lists)
def test_max_drawdown_lies_between_minus_one_and_zero(returns):
    assert -1.0 <= metrics.max_drawdown(returns) <= 0.0


@given(returns_lists)
def test_total_return_is_the_compounded_product(returns):
    expected = math.prod(1.0 + r for r in returns) - 1.0
    assert metrics.total_return(returns) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@given(returns_lists)
def test_annual_return_over_exactly_one_year_is_the_total_return(returns):
    n = len(returns)
    assert metrics.annual_return(returns, periods_per_year=n) == pytest.approx(
        metrics.total_return(returns), rel=1e-9, abs=1e-12)


# Returns on a 0.001 % grid: a realistic resolution that keeps squares far from underflow.
grid_returns = st.integers(min_value=-50_000, max_value=50_000).map(lambda k: k / 1e5)


@given(st.lists(grid_returns, min_size=2, max_size=60), st.floats(min_value=1e-3, max_value=1e3))
def test_sharpe_is_invariant_to_scaling_returns_by_a_positive_constant(returns, scale):
    assume(len(set(returns)) > 1)  # constant returns have no sharpe (an edge case tested above)
    base = metrics.sharpe_ratio(returns, periods_per_year=252)
    scaled = metrics.sharpe_ratio([r * scale for r in returns], periods_per_year=252)
    assert scaled == pytest.approx(base, rel=1e-6, abs=1e-9)


@given(returns_lists)
def test_drawdown_duration_is_a_whole_number_of_bars_no_longer_than_the_series(returns):
    duration = metrics.max_drawdown_duration(returns)
    assert duration == int(duration) and 0 <= duration <= len(returns)
    assert (duration == 0) == (metrics.max_drawdown(returns) == 0.0)


# Within four orders of magnitude: 1 + r of a return near -1 loses the digits of the ratio.
@given(st.lists(st.floats(min_value=1.0, max_value=1e4), min_size=1, max_size=40))
def test_returns_from_values_compound_back_to_the_equity_curve(values):
    returns = metrics.returns_from_values(values)
    np.testing.assert_allclose(values[0] * np.cumprod(1.0 + returns), values[1:], rtol=1e-9)

