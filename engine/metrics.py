"""Performance metrics: empyrical-style pure functions over simple per-period returns.

Every function takes `returns`, a 1-D pandas Series or numpy array of simple (not log) returns, one
per bar (0.01 is +1 %), and, where a metric is annualised, a keyword-only `periods_per_year` (252 for
daily stock bars, 365 for daily crypto bars, ...). The risk-free rate is 0. Definitions follow
empyrical (https://github.com/stefan-jansen/empyrical-reloaded); the tests compare against it.

Edge cases, decided once for every function here:

- Invalid input raises ValueError: `returns` not 1-D, a NaN or +-inf anywhere in it (the message
  names the position, e.g. "returns[3] is nan"), `periods_per_year` not a finite number > 0.
  empyrical skips NaN returns instead; a NaN here means a bug upstream, so we refuse it.
- Empty `returns`: every metric is NaN (empyrical agrees except that it has no duration/win rate).
- One return: total_return, annual_return, max_drawdown, calmar_ratio, max_drawdown_duration and
  win_rate are defined; annual_volatility, sharpe_ratio, sortino_ratio and alpha_beta need at least
  two returns (a sample standard deviation) and are NaN.
- A ratio whose denominator is zero is NaN, never +-inf: sharpe_ratio of constant returns
  (empyrical gives +-inf when the mean is not 0), sortino_ratio with no return below 0 (empyrical
  gives +inf), calmar_ratio with no drawdown, alpha_beta against a constant benchmark (variance
  below 1e-30 as in empyrical, so float rounding noise counts as constant), win_rate when no return
  is non-zero. An infinite ratio would win every "best checkpoint" comparison and cannot be stored
  as JSON; NaN says "undefined" (the trainer scores a non-finite metric as the worst).
- Zero variance is not a division: annual_volatility of constant returns is 0.0.
- Returns below -1 (the value went below zero, e.g. a leveraged account ruined on its last bar) are
  accepted. max_drawdown is then below -1, and annual_return is NaN when the final value is negative
  (a fractional power of a negative number is not real).
- annual_return (a power periods_per_year / n) and alpha (a power periods_per_year) can be huge:
  for a short, strongly positive series at a high frequency (one hour of minute bars) they
  overflow to +inf. That is a float overflow, not a division by zero; calmar_ratio turns it into
  NaN as empyrical does, and json_safe stores it as null.

performance_report() gathers the metrics into a dict of plain Python floats (counts are whole-number
floats, so the dict is uniformly dict[str, float]). NaN values are allowed; callers that store JSON
turn them into null (engine.backtest.report.json_safe).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "alpha_beta",
    "annual_return",
    "annual_volatility",
    "calmar_ratio",
    "drawdown_series",
    "max_drawdown",
    "max_drawdown_duration",
    "performance_report",
    "returns_from_values",
    "sharpe_ratio",
    "sortino_ratio",
    "total_return",
    "win_rate",
]

NAN = float("nan")
BENCHMARK_VARIANCE_FLOOR = 1e-30


def _as_array(x, name: str) -> np.ndarray:
    """`x` as a 1-D float64 array, or ValueError naming `name` and the first bad position."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{name}[{k}] is {arr[k]}; {name} must be finite ({bad.size} non-finite value(s))")
    return arr


def _check_periods(periods_per_year) -> float:
    try:
        ppy = float(periods_per_year)
    except (TypeError, ValueError):
        raise ValueError(f"periods_per_year must be a number > 0, got {periods_per_year!r}") from None
    if not (math.isfinite(ppy) and ppy > 0):
        raise ValueError(f"periods_per_year must be a finite number > 0, got {periods_per_year!r}")
    return ppy


def _is_constant(r: np.ndarray) -> bool:
    # The sample std of identical values is exactly 0, but the float mean it is centred on can miss
    # them by one ulp and leave a ~1e-18 residue; test the values themselves (as empyrical does).
    return bool(r.max() == r.min())


def returns_from_values(values) -> np.ndarray:
    """Simple returns of an equity curve: values[1:] / values[:-1] - 1 (n + 1 values -> n returns).

    Every value but the last must be > 0 (a return after a value of 0 or below is undefined);
    the last may be 0 or negative (ruin). ValueError names the offending position.
    """
    v = _as_array(values, "values")
    nonpositive = np.flatnonzero(v[:-1] <= 0)
    if nonpositive.size:
        k = int(nonpositive[0])
        raise ValueError(f"values[{k}] is {v[k]}; every value before the last must be > 0")
    return v[1:] / v[:-1] - 1.0


def total_return(returns) -> float:
    """Compounded return over the whole series: prod(1 + r) - 1 (0.1 is +10 %). Empty -> NaN."""
    r = _as_array(returns, "returns")
    if r.size == 0:
        return NAN
    return float(np.prod(1.0 + r) - 1.0)


def annual_return(returns, *, periods_per_year: float) -> float:
    """Compound annual growth rate: (1 + total_return) ** (periods_per_year / n) - 1.

    Empty -> NaN; a negative final value (1 + total_return < 0) -> NaN.
    """
    ppy = _check_periods(periods_per_year)
    r = _as_array(returns, "returns")
    if r.size == 0:
        return NAN
    growth = float(np.prod(1.0 + r))
    if growth < 0:
        return NAN
    try:
        return growth ** (ppy / r.size) - 1.0
    except OverflowError:
        return math.inf


def annual_volatility(returns, *, periods_per_year: float) -> float:
    """Annualised sample standard deviation: std(r, ddof=1) * sqrt(periods_per_year).

    Fewer than two returns -> NaN; constant returns -> 0.0.
    """
    ppy = _check_periods(periods_per_year)
    r = _as_array(returns, "returns")
    if r.size < 2:
        return NAN
    if _is_constant(r):
        return 0.0
    return float(np.std(r, ddof=1) * math.sqrt(ppy))


def sharpe_ratio(returns, *, periods_per_year: float) -> float:
    """Annualised Sharpe ratio with a zero risk-free rate: mean(r) / std(r, ddof=1) * sqrt(ppy).

    Fewer than two returns -> NaN; constant returns (zero std, also when it underflows) -> NaN.
    """
    ppy = _check_periods(periods_per_year)
    r = _as_array(returns, "returns")
    if r.size < 2 or _is_constant(r):
        return NAN
    std = float(np.std(r, ddof=1))
    if std == 0.0:  # tiny distinct returns (~1e-170) whose squares underflow to 0
        return NAN
    return float(r.mean() / std * math.sqrt(ppy))


def sortino_ratio(returns, *, periods_per_year: float) -> float:
    """Annualised Sortino ratio, required return 0.

    mean(r) * ppy / (sqrt(mean(min(r, 0) ** 2)) * sqrt(ppy)): the downside deviation averages the
    squared shortfalls over ALL periods (zeros for the good ones), as empyrical does.
    Fewer than two returns -> NaN; no return below 0 (zero downside) -> NaN.
    """
    ppy = _check_periods(periods_per_year)
    r = _as_array(returns, "returns")
    if r.size < 2:
        return NAN
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) * math.sqrt(ppy)
    if downside == 0.0:
        return NAN
    return float(r.mean() * ppy / downside)


def drawdown_series(returns) -> np.ndarray:
    """Drawdown after each return: wealth / running peak - 1, <= 0, same length as `returns`.

    Wealth compounds from 1 and that starting 1 counts as a peak, so a first return of -0.1 is a
    drawdown of -0.1. Empty -> empty array.
    """
    r = _as_array(returns, "returns")
    wealth = np.cumprod(1.0 + r)
    peak = np.maximum.accumulate(np.concatenate(([1.0], wealth)))[1:]
    return wealth / peak - 1.0


def max_drawdown(returns) -> float:
    """Largest peak-to-trough fall of the compounded wealth curve, as a fraction <= 0 (-0.2 is -20 %).

    Empty -> NaN. Within [-1, 0] unless a return is below -1 (see the module docstring).
    """
    dd = drawdown_series(returns)
    if dd.size == 0:
        return NAN
    return float(min(dd.min(), 0.0))


def max_drawdown_duration(returns) -> float:
    """Longest run of consecutive bars spent below a previous peak, as a whole-number float of bars.

    A bar counts when its wealth is strictly below the running peak (the starting 1 included); a run
    still open at the end counts. 0.0 if never below a peak; empty -> NaN.
    """
    dd = drawdown_series(returns)
    if dd.size == 0:
        return NAN
    # Runs of True in `below`: +1 steps of the padded 0/1 sequence open a run, -1 steps close one.
    edges = np.diff(np.concatenate(([0], (dd < 0.0).astype(np.int8), [0])))
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return float(lengths.max()) if lengths.size else 0.0


def calmar_ratio(returns, *, periods_per_year: float) -> float:
    """annual_return / |max_drawdown|. No drawdown (max_drawdown == 0), empty, or non-finite -> NaN."""
    mdd = max_drawdown(returns)
    if not mdd < 0.0:
        return NAN
    ratio = annual_return(returns, periods_per_year=periods_per_year) / abs(mdd)
    return ratio if math.isfinite(ratio) else NAN


def win_rate(returns) -> float:
    """Share of the non-zero returns that are positive, in [0, 1].

    A flat bar (return exactly 0, e.g. the strategy sat in cash) is neither a win nor a loss, so an
    idle strategy is not penalised for waiting. Empty or all-zero -> NaN.
    """
    r = _as_array(returns, "returns")
    moved = np.count_nonzero(r)
    if moved == 0:
        return NAN
    return float(np.count_nonzero(r > 0) / moved)


def alpha_beta(returns, benchmark_returns, *, periods_per_year: float) -> tuple[float, float]:
    """(alpha, beta) of `returns` against `benchmark_returns` (same length, same bars), as empyrical.

    beta = cov(r, b) / var(b) (both population moments, so the ddof cancels);
    alpha = (1 + mean(r - beta * b)) ** periods_per_year - 1, an annualised rate.
    Fewer than two returns or a constant benchmark (variance below BENCHMARK_VARIANCE_FLOOR = 1e-30,
    which includes float rounding noise) -> (NaN, NaN); alpha is NaN when
    1 + mean(r - beta * b) < 0 (not a real power).
    """
    ppy = _check_periods(periods_per_year)
    r = _as_array(returns, "returns")
    b = _as_array(benchmark_returns, "benchmark_returns")
    if b.size != r.size:
        raise ValueError(f"benchmark_returns has {b.size} returns, returns has {r.size}; they must match")
    if r.size < 2:
        return NAN, NAN
    b_centred = b - b.mean()
    var = float(np.mean(b_centred**2))
    # empyrical's threshold: a constant benchmark up to float rounding (a per-bar std of 1e-15, the
    # ulp noise of returns taken from a smooth curve) has no meaningful beta.
    if var < BENCHMARK_VARIANCE_FLOOR:
        return NAN, NAN
    beta = float(np.mean(b_centred * r)) / var
    base = 1.0 + float(np.mean(r - beta * b))
    try:
        alpha = base**ppy - 1.0 if base >= 0 else NAN
    except OverflowError:
        alpha = math.inf
    return float(alpha), beta


def performance_report(returns, *, periods_per_year: float) -> dict[str, float]:
    """Every single-series metric of `returns` as a dict of plain Python floats (NaN allowed).

    Keys: total_return, annual_return, annual_volatility, sharpe, sortino, max_drawdown, calmar,
    max_drawdown_duration (bars), win_rate, n_periods (number of returns).
    """
    r = _as_array(returns, "returns")
    ppy = _check_periods(periods_per_year)
    return {
        "total_return": total_return(r),
        "annual_return": annual_return(r, periods_per_year=ppy),
        "annual_volatility": annual_volatility(r, periods_per_year=ppy),
        "sharpe": sharpe_ratio(r, periods_per_year=ppy),
        "sortino": sortino_ratio(r, periods_per_year=ppy),
        "max_drawdown": max_drawdown(r),
        "calmar": calmar_ratio(r, periods_per_year=ppy),
        "max_drawdown_duration": max_drawdown_duration(r),
        "win_rate": win_rate(r),
        "n_periods": float(r.size),
    }
