"""engine.backtest.report: hand-made equity curves, json_safe, and JSON storage of the report."""
import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from engine.backtest.report import backtest_report, json_safe

# Strategy 100 -> 110 -> 99 -> 121: returns +10 %, -10 %, +22.2 %; total 21 %; the fall from the 110
# peak to 99 is the max drawdown, -10 %, one bar long; back above the peak at the end.
# Benchmark 100 -> 100 -> 105 -> 105: returns 0, +5 %, 0; total 5 %, never below a peak.
VALUES = np.array([100.0, 110.0, 99.0, 121.0])
BENCH = np.array([100.0, 100.0, 105.0, 105.0])
DATES = ["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07"]


def report(**kwargs):
    args = {"values": VALUES, "benchmark_values": BENCH, "periods_per_year": 252} | kwargs
    return backtest_report(**args)


def test_metrics_of_a_hand_made_curve_and_its_benchmark():
    r = report()
    assert r["metrics"]["total_return"] == pytest.approx(0.21)
    assert r["metrics"]["max_drawdown"] == pytest.approx(-0.1)
    assert r["metrics"]["max_drawdown_duration"] == 1.0
    assert r["metrics"]["win_rate"] == pytest.approx(2 / 3)
    assert r["metrics"]["n_periods"] == 3.0
    assert r["benchmark_metrics"]["total_return"] == pytest.approx(0.05)
    assert r["benchmark_metrics"]["max_drawdown"] == 0.0
    # The benchmark never falls: its calmar and sortino are undefined, stored as null.
    assert r["benchmark_metrics"]["calmar"] is None and r["benchmark_metrics"]["sortino"] is None


def test_equity_curve_and_drawdown_have_one_point_per_value():
    r = report(dates=DATES)
    assert r["equity_curve"] == [
        {"date": d, "value": v, "benchmark": b} for d, v, b in zip(DATES, VALUES.tolist(), BENCH.tolist())
    ]
    assert [p["date"] for p in r["drawdown"]] == DATES
    np.testing.assert_allclose([p["strategy"] for p in r["drawdown"]], [0.0, 0.0, 99 / 110 - 1, 0.0])
    assert [p["benchmark"] for p in r["drawdown"]] == [0.0, 0.0, 0.0, 0.0]


def test_without_dates_the_curve_is_labelled_by_bar_index():
    assert [p["date"] for p in report()["equity_curve"]] == [0, 1, 2, 3]


def test_datetime_labels_become_iso_strings():
    dates = np.array(DATES, dtype="datetime64[s]")
    r = report(dates=dates)
    assert r["equity_curve"][0]["date"] == "2021-01-04T00:00:00"
    r = report(dates=[dt.date(2021, 1, 4 + k) for k in range(4)])
    assert r["drawdown"][3]["date"] == "2021-01-07"


def test_alpha_and_beta_against_a_benchmark_the_strategy_tracks_with_leverage():
    # Strategy returns = 2 * benchmark returns exactly, so beta = 2 and the residual is 0: alpha = 0.
    bench_returns = np.array([0.01, -0.02, 0.015, 0.005])
    bench = 100 * np.concatenate(([1.0], np.cumprod(1 + bench_returns)))
    values = 100 * np.concatenate(([1.0], np.cumprod(1 + 2 * bench_returns)))
    r = backtest_report(values=values, benchmark_values=bench, periods_per_year=252)
    assert r["beta"] == pytest.approx(2.0, rel=1e-9)
    assert r["alpha"] == pytest.approx(0.0, abs=1e-9)


def test_turnover_and_fees_are_summarised_per_step_and_in_total():
    r = report(turnover=np.array([0.5, 0.1, 0.3]), fees=[1.0, 0.25, 0.75])
    assert r["metrics"]["turnover"] == pytest.approx(0.3)
    assert r["metrics"]["turnover_total"] == pytest.approx(0.9)
    assert r["metrics"]["fees"] == pytest.approx(2.0)


def test_turnover_and_fees_not_given_are_null():
    metrics = report()["metrics"]
    assert metrics["turnover"] is None and metrics["turnover_total"] is None and metrics["fees"] is None


def test_trades_weights_positions_and_tickers_pass_through_as_plain_python():
    trades = [{"date": "2021-01-05", "tic": np.str_("AAPL"), "side": "buy", "value": np.float64(12.5)}]
    weights = np.array([[0.5, 0.5], [0.2, 0.8], [0.0, 1.0]], dtype=np.float32)
    r = report(trades=trades, weights=weights, positions=np.array([1.0, 0.0, -2.0]), tickers=np.array(["AAPL"]))
    assert r["trades"] == [{"date": "2021-01-05", "tic": "AAPL", "side": "buy", "value": 12.5}]
    assert type(r["trades"][0]["value"]) is float and type(r["trades"][0]["tic"]) is str
    assert r["weights"] == [[0.5, 0.5], [pytest.approx(0.2), pytest.approx(0.8)], [0.0, 1.0]]
    assert all(type(x) is float for row in r["weights"] for x in row)
    assert r["positions"] == [1.0, 0.0, -2.0]
    assert r["tickers"] == ["AAPL"]


def test_optional_sections_are_absent_when_not_given():
    assert not {"trades", "weights", "positions", "tickers"} & set(report())


def test_the_report_is_storable_as_strict_json_even_with_undefined_metrics():
    # A one-step backtest: sharpe, sortino, alpha and beta all need two returns, so they are NaN.
    r = backtest_report(values=[100.0, 101.0], benchmark_values=[100.0, 100.0], periods_per_year=252,
                        dates=DATES[:2], turnover=[0.2], fees=[0.1], trades=[], weights=[[0.0, 1.0]])
    assert r["metrics"]["sharpe"] is None and r["alpha"] is None and r["beta"] is None
    assert json.loads(json.dumps(r, allow_nan=False)) == r


def test_a_report_of_no_steps_is_all_null_metrics_and_one_point():
    r = backtest_report(values=[100.0], benchmark_values=[100.0], periods_per_year=252)
    assert r["metrics"]["total_return"] is None and r["metrics"]["n_periods"] == 0.0
    assert r["equity_curve"] == [{"date": 0, "value": 100.0, "benchmark": 100.0}]
    json.dumps(r, allow_nan=False)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"benchmark_values": BENCH[:3]}, "benchmark_values"),
        ({"dates": DATES[:3]}, "dates"),
        ({"turnover": [0.1, 0.2]}, "turnover"),
        ({"fees": [0.1, 0.2, 0.3, 0.4]}, "fees"),
        ({"weights": [[1.0], [1.0]]}, "weights"),
        ({"positions": [1.0]}, "positions"),
        ({"values": []}, "values"),
        ({"values": np.ones((4, 1))}, "values"),
    ],
)
def test_mismatched_lengths_are_refused_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name} "):
        report(**kwargs)


def test_a_nan_in_the_benchmark_curve_is_refused_naming_the_benchmark():
    with pytest.raises(ValueError, match=r"benchmark_values: values\[2\] is nan"):
        report(benchmark_values=np.array([100.0, 100.0, math.nan, 105.0]))


def test_json_safe_replaces_non_finite_floats_with_none_recursively():
    obj = {"a": math.nan, "b": [1.0, math.inf, (-math.inf, 2)], "c": {"d": np.float32("nan")}, "e": None}
    assert json_safe(obj) == {"a": None, "b": [1.0, None, [None, 2]], "c": {"d": None}, "e": None}


def test_json_safe_turns_numpy_and_dates_into_python_values():
    obj = {
        np.int64(3): np.array([1.5, np.nan]),
        "n": np.int32(7),
        "flag": np.bool_(True),
        "when": np.datetime64("2021-01-04"),
        "ts": pd.Timestamp("2021-01-04 23:59:59"),
        "nat": np.datetime64("NaT"),
    }
    safe = json_safe(obj)
    assert safe == {"3": [1.5, None], "n": 7, "flag": True, "when": "2021-01-04", "ts": "2021-01-04T23:59:59",
                    "nat": None}
    assert type(safe["n"]) is int and type(safe["flag"]) is bool
    json.dumps(safe, allow_nan=False)


def test_json_safe_refuses_what_json_cannot_hold():
    with pytest.raises(TypeError, match="set"):
        json_safe({"tickers": {"AAPL"}})
