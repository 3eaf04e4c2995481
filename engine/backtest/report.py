"""The backtest report: a strategy's equity curve against a benchmark's, as a JSON-safe dict.

Pure functions over arrays; the platform stores the result as JSON, so every float in it is a plain
Python float and NaN/inf become None (json.dumps(report, allow_nan=False) succeeds).
"""
from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

import numpy as np

from engine.metrics import alpha_beta, drawdown_series, performance_report, returns_from_values

__all__ = ["BacktestReport", "DrawdownPoint", "EquityPoint", "backtest_report", "json_safe"]


class EquityPoint(TypedDict):
    date: str | int  # ISO date, or the bar index when the report has no dates
    value: float | None
    benchmark: float | None


class DrawdownPoint(TypedDict):
    date: str | int
    strategy: float | None  # a fraction <= 0
    benchmark: float | None


class BacktestReport(TypedDict):
    """The JSON of one backtest of an agent over a split, as the platform stores it (None for NaN).

    Every report names its task, benchmark agent, split and run config and has both sides' metrics.
    A task evaluated by "episode" (engine.tasks) adds alpha and beta against the benchmark, the
    curves, the trades and the asset names, with the weights (portfolio management) or positions
    (algorithmic trading) of each step; one evaluated by "orders" adds its orders.
    """

    task: str
    benchmark: str
    metrics: dict[str, float | None]
    benchmark_metrics: dict[str, float | None]
    alpha: NotRequired[float | None]
    beta: NotRequired[float | None]
    equity_curve: NotRequired[list[EquityPoint]]
    drawdown: NotRequired[list[DrawdownPoint]]
    trades: NotRequired[list[dict[str, Any]]]
    weights: NotRequired[list[list[float]]]
    positions: NotRequired[list[float]]
    tickers: NotRequired[list[str]]
    orders: NotRequired[list[dict[str, Any]]]
    split: str
    config: dict[str, Any]


def json_safe(obj):
    """`obj` with NaN/+-inf floats turned into None, recursively, ready for json.dumps(allow_nan=False).

    numpy scalars become Python scalars, numpy arrays and tuples become lists, dict keys become str,
    dates and datetimes (datetime, numpy datetime64, pandas Timestamp) become ISO strings.
    Anything else JSON cannot hold raises TypeError naming its type.
    """
    # numpy scalars first: np.float64 and np.str_ subclass float and str, and must not pass as such.
    if isinstance(obj, np.datetime64):
        return None if np.isnat(obj) else str(np.datetime_as_string(obj))
    if isinstance(obj, np.generic):  # numpy bool/int/float/str scalars
        return json_safe(obj.item())
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (_dt.date, _dt.datetime)):  # pandas Timestamp is a datetime
        return obj.isoformat()
    if isinstance(obj, Mapping):
        return {str(json_safe(k)): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    raise TypeError(f"json_safe cannot convert a {type(obj).__name__} to JSON")


def _per_step(x, name: str, n: int) -> np.ndarray:
    """A per-step float array of length n (one entry per return), or ValueError naming `name`."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have one entry per step ({n}), got shape {arr.shape}")
    return arr


def _labels(dates, n_values: int) -> list:
    """ISO date strings, one per value, or the bar indexes 0..n when no dates are given."""
    if dates is None:
        return list(range(n_values))
    labels = [json_safe(d) for d in dates]
    if len(labels) != n_values:
        raise ValueError(f"dates must have one entry per value ({n_values}), got {len(labels)}")
    return labels


def _activity(n: int, turnover, fees) -> dict[str, float]:
    """Turnover (mean per step and total, as the env reports it) and total fees; NaN when not given."""
    out = {"turnover": math.nan, "turnover_total": math.nan, "fees": math.nan}
    if turnover is not None:
        t = _per_step(turnover, "turnover", n)
        out["turnover"] = float(t.mean()) if n else math.nan
        out["turnover_total"] = float(t.sum())
    if fees is not None:
        out["fees"] = float(_per_step(fees, "fees", n).sum())
    return out


def backtest_report(*, values, benchmark_values, periods_per_year: float, dates=None, turnover=None,
                    fees=None, trades=None, weights=None, positions=None, tickers=None) -> dict:
    """The report of one backtest, JSON-safe (NaN/inf -> None).

    values: the strategy's equity curve, n + 1 values with the initial value first (currency).
    benchmark_values: the benchmark's equity curve on the same bars (n + 1 values).
    dates: n + 1 labels of those bars (str, datetime or datetime64); default the bar index 0..n.
    turnover, fees: per-step arrays (n entries); fees in currency.
    trades: a list of dicts, passed through. weights, positions: per-step holdings (n rows), passed
    through as lists. tickers: the asset names, passed through.

    Keys: "metrics" (performance_report of the strategy's returns plus "turnover" = mean per step,
    "turnover_total" and "fees" = total, None when not given), "benchmark_metrics", "alpha" and
    "beta" (of the strategy against the benchmark), "equity_curve" (n + 1 of {"date", "value",
    "benchmark"}), "drawdown" (n + 1 of {"date", "strategy", "benchmark"}, fractions <= 0, the first
    0), and "trades", "weights", "positions", "tickers" when given.
    Mismatched lengths raise ValueError naming the argument.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a 1-D equity curve with the initial value first, got shape {v.shape}")
    b = np.asarray(benchmark_values, dtype=np.float64)
    if b.shape != v.shape:
        raise ValueError(f"benchmark_values must have the shape of values {v.shape}, got {b.shape}")
    n = v.size - 1
    labels = _labels(dates, v.size)
    r = returns_from_values(v)
    try:
        rb = returns_from_values(b)
    except ValueError as exc:  # its message says "values[k]"; say which curve
        raise ValueError(f"benchmark_values: {exc}") from None
    alpha, beta = alpha_beta(r, rb, periods_per_year=periods_per_year)
    # The first point is the start: no drawdown yet.
    dd = np.concatenate(([0.0], drawdown_series(r)))
    dd_b = np.concatenate(([0.0], drawdown_series(rb)))
    report = {
        "metrics": performance_report(r, periods_per_year=periods_per_year) | _activity(n, turnover, fees),
        "benchmark_metrics": performance_report(rb, periods_per_year=periods_per_year),
        "alpha": alpha,
        "beta": beta,
        "equity_curve": [
            {"date": d, "value": float(x), "benchmark": float(y)} for d, x, y in zip(labels, v, b)
        ],
        "drawdown": [
            {"date": d, "strategy": float(x), "benchmark": float(y)} for d, x, y in zip(labels, dd, dd_b)
        ],
    }
    if trades is not None:
        report["trades"] = list(trades)
    for name, rows in (("weights", weights), ("positions", positions)):
        if rows is not None:
            if len(rows) != n:
                raise ValueError(f"{name} must have one row per step ({n}), got {len(rows)}")
            report[name] = rows
    if tickers is not None:
        report["tickers"] = [str(t) for t in tickers]
    return json_safe(report)
