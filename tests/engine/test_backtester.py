"""Backtests of every task: the report's shape, its honesty against the benchmark, and JSON safety."""
import json

import numpy as np
import pytest

from engine.agents import AGENTS
from engine.backtest.backtester import make_env, run_backtest, run_orders
from engine.data.synthetic import synthetic_market
from engine.envs import PARAMS

BARS = range(100, 160)


@pytest.fixture(scope="module")
def markets():
    return {"many": synthetic_market(n_assets=3, n_periods=160, seed=4),
            "one": synthetic_market(n_assets=1, n_periods=160, seed=4)}


def agent(name, task, market, params):
    return AGENTS[name](make_env(task, market, BARS, params), device="cpu")


def test_buy_and_hold_backtested_against_itself_matches_its_benchmark_exactly(markets):
    market, params = markets["many"], PARAMS["portfolio_management"](window=5, transaction_cost=0.0)
    report = run_backtest(agent("buy_and_hold", "portfolio_management", market, params), "portfolio_management",
                          market, BARS, params)
    assert report["metrics"]["total_return"] == report["benchmark_metrics"]["total_return"]
    # Bought at the first decision bar's close and held to the last bar of the range.
    close = market.close
    assert report["metrics"]["total_return"] == pytest.approx(np.mean(close[BARS.stop - 1] / close[BARS.start]) - 1,
                                                              rel=1e-12)
    assert report["beta"] == pytest.approx(1.0) and report["alpha"] == pytest.approx(0.0, abs=1e-9)


def test_a_portfolio_report_has_curves_trades_weights_fees_and_benchmark_metrics(markets):
    market, params = markets["many"], PARAMS["portfolio_management"](window=5, transaction_cost=0.002)
    report = run_backtest(agent("crp", "portfolio_management", market, params), "portfolio_management",
                          market, BARS, params)
    steps = len(BARS) - 1
    assert len(report["equity_curve"]) == steps + 1 and report["equity_curve"][0]["value"] == params.initial_cash
    assert report["equity_curve"][0]["date"] == str(market.dates[BARS.start])[:10]
    assert len(report["weights"]) == steps and len(report["weights"][0]) == 4
    assert report["metrics"]["fees"] > 0 and report["metrics"]["turnover"] > 0
    assert {t["tic"] for t in report["trades"]} == set(market.tickers)
    for key in ("total_return", "annual_return", "annual_volatility", "sharpe", "sortino", "max_drawdown",
                "calmar", "max_drawdown_duration", "win_rate"):
        assert key in report["metrics"] and key in report["benchmark_metrics"]
    json.dumps(report, allow_nan=False)


def test_a_trading_report_lists_each_trade_with_its_price_and_fee(markets):
    market, params = markets["one"], PARAMS["algorithmic_trading"](window=5, action_mode="order", order_size=0.2)
    report = run_backtest(agent("random", "algorithmic_trading", market, params), "algorithmic_trading",
                          market, BARS, params)
    assert report["benchmark"] == "buy_and_hold" and report["trades"]
    for trade in report["trades"]:
        assert trade["side"] in ("buy", "sell") and trade["shares"] > 0 and trade["price"] > 0
        assert trade["fee"] == pytest.approx(params.transaction_cost * trade["shares"] * trade["price"])
    assert len(report["positions"]) == len(BARS) - 1


def test_execution_backtests_run_back_to_back_orders_against_twap(markets):
    market, params = markets["one"], PARAMS["order_execution"](window=5, horizon=10)
    twap = agent("twap", "order_execution", market, params)
    orders = run_orders(twap, market, BARS, params)
    assert [o["bar"] for o in orders] == list(range(100, 150, 10))  # last order must end before bar 159
    assert all(o["remaining"] == 0.0 and o["executed"] == pytest.approx(params.quantity) for o in orders)
    report = run_backtest(twap, "order_execution", market, BARS, params)
    assert report["metrics"] == report["benchmark_metrics"]
    assert report["metrics"]["orders"] == 5 and report["orders"][0]["date"] == str(market.dates[100])[:10]
