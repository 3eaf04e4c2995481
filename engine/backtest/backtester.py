"""Backtests: run a policy over a split and turn what happened into a report.

How a task is evaluated, and against which benchmark by default, its engine.tasks spec says.
"episode" (portfolio management, algorithmic trading): one episode over the split, measured as an
equity curve against a benchmark policy run over the same bars (buy_and_hold: equal dollar amounts of
every asset at the first decision bar's close, then held). "orders" (order execution): consecutive
orders of `horizon` bars back to back over the split, measured by implementation shortfall against
the benchmark's (TWAP).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from engine.backtest.report import backtest_report, json_safe
from engine.backtest.rollout import Rollout, bar_dates, first_decision_bar, rollout
from engine.data.market import MarketData
from engine.envs import make_env
from engine.metrics import performance_report
from engine.tasks import TASK_SPECS

# A trading env trade smaller than this fraction of the account value is float rounding, not a fill:
# the env holds fractional shares (no lot rounding) and re-solves its target at every bar in float64,
# so holding a position "trades" about 1e-16 of the account (a DQN report listed 564 such "trades" of
# 0 shares at 0 fee). A billionth is far above that noise and far below any real order (a tenth of a
# cent on a 1,000,000 account).
TRADE_DUST = 1e-9
# A portfolio rebalance smaller than this fraction of the account is no trade either: the weights a
# decision started from are read back from the float32 observation, whose rounding moves each by ~1e-7.
REBALANCE_DUST = 1e-6


def _by_orders(task: str) -> bool:
    return TASK_SPECS[task].evaluation == "orders"


def evaluation_params(task: str, params):
    """The env params of an evaluation: one deterministic pass from the split's first bar."""
    if _by_orders(task):
        return dataclasses.replace(params, random_start=False)
    return dataclasses.replace(params, episode_length=None)


def run_policy(agent, task: str, market: MarketData, bars: range, params, *, device="cpu") -> Rollout:
    """One deterministic episode over `bars` (portfolio management, algorithmic trading)."""
    params = evaluation_params(task, params)
    env = make_env(task, market, bars, params, device=device)
    return rollout(
        agent, env, initial_value=params.initial_cash, start_bar=first_decision_bar(bars.start, params.window)
    )


def run_orders(agent, market: MarketData, bars: range, params, *, device="cpu") -> list[dict]:
    """Consecutive orders of `params.horizon` steps over `bars` (order execution)."""
    params = evaluation_params("order_execution", params)
    orders = []
    start = first_decision_bar(bars.start, params.window)
    # The last decision of an order must leave one bar for the env's end-of-data rule.
    while start + params.horizon <= bars.stop - 1:
        env = make_env("order_execution", market, range(start, bars.stop), params, device=device)
        r = rollout(agent, env, initial_value=0.0, start_bar=start)
        arrival = float(r.info["arrival_price"][0]) if "arrival_price" in r.info else float(market.close[start, 0])
        executed = r.info["executed"]
        notional = params.quantity * arrival
        shortfall = float(r.info["shortfall"][-1])
        orders.append({
            "bar": start,
            "arrival_price": arrival,
            "average_price": float((r.info["exec_price"] * executed).sum() / max(executed.sum(), 1e-12)),
            "executed": float(executed.sum()),
            "remaining": float(r.info["remaining"][-1]),
            "shortfall": shortfall,
            "shortfall_bps": shortfall / notional * 1e4,
            "reward": float(r.rewards.sum()),
        })
        start += params.horizon
    return orders


def _execution_metrics(orders: list[dict]) -> dict:
    bps = np.array([o["shortfall_bps"] for o in orders], dtype=np.float64)
    return {
        "orders": len(orders),
        "shortfall_bps": float(bps.mean()) if len(bps) else float("nan"),
        "shortfall_bps_std": float(bps.std(ddof=1)) if len(bps) > 1 else float("nan"),
        "worst_shortfall_bps": float(bps.max()) if len(bps) else float("nan"),
        "reward": float(np.mean([o["reward"] for o in orders])) if orders else float("nan"),
    }


def evaluate(agent, task: str, market: MarketData, bars: range, params, *, device="cpu") -> dict[str, float]:
    """The trainer's per-epoch evaluation: metrics namespaced "eval/"."""
    if _by_orders(task):
        metrics = _execution_metrics(run_orders(agent, market, bars, params, device=device))
    else:
        r = run_policy(agent, task, market, bars, params, device=device)
        metrics = performance_report(r.returns, periods_per_year=market.periods_per_year)
        metrics["reward"] = float(r.rewards.sum())
        metrics["final_value"] = float(r.values[-1])
    return {f"eval/{k}": float(v) for k, v in metrics.items()}


def benchmark_agent(name: str, task: str, market: MarketData, bars: range, params, *, device="cpu"):
    from engine.agents import AGENTS

    env = make_env(task, market, bars, evaluation_params(task, params), device=device)
    return AGENTS[name](env, device=device)


def _benchmark_params(task: str, params):
    # buy_and_hold is a target-exposure policy: an order-mode trading strategy is compared with the
    # same market held long, at the same cost.
    if task == "algorithmic_trading" and getattr(params, "action_mode", "target") != "target":
        return dataclasses.replace(params, action_mode="target")
    return params


@torch.no_grad()
def run_backtest(agent, task: str, market: MarketData, bars: range, params, *, benchmark: str | None = None,
                 device="cpu") -> dict:
    """A JSON-safe report of `agent` over `bars` against `benchmark` (default: the task's)."""
    benchmark = benchmark or TASK_SPECS[task].benchmark
    bench_params = _benchmark_params(task, params)
    bench = benchmark_agent(benchmark, task, market, bars, bench_params, device=device)
    if _by_orders(task):
        orders = run_orders(agent, market, bars, params, device=device)
        bench_orders = run_orders(bench, market, bars, bench_params, device=device)
        for o in orders:
            o["date"] = bar_dates(market, np.array([o["bar"]]))[0]
        return json_safe({
            "task": task,
            "benchmark": benchmark,
            "metrics": _execution_metrics(orders),
            "benchmark_metrics": _execution_metrics(bench_orders),
            "orders": orders,
        })

    r = run_policy(agent, task, market, bars, params, device=device)
    b = run_policy(bench, task, market, bars, bench_params, device=device)
    dates = bar_dates(market, r.bars)
    extra = _task_details(task, market, r, dates)
    report = backtest_report(
        values=r.values,
        benchmark_values=b.values,
        periods_per_year=market.periods_per_year,
        dates=dates,
        tickers=list(market.tickers),
        **extra,
    )
    report["task"] = task
    report["benchmark"] = benchmark
    return json_safe(report)


def _task_details(task: str, market: MarketData, r: Rollout, dates: list[str]) -> dict:
    """Per-bar holdings, trades, turnover and fees from the rollout's info. The trades are the fills:
    a step whose trade is rounding (TRADE_DUST, REBALANCE_DUST of the account) is no trade."""
    info = r.info
    fees = info.get("cost")
    details: dict = {"fees": fees, "turnover": info.get("turnover")}
    trades = []
    if task == "portfolio_management":
        weights = info["weights"]  # (n, N+1) after each rebalance, cash first
        drifted = r.obs_extra  # the weights each decision was taken from
        values_before = r.values[:-1]
        for k in range(len(weights)):
            delta = (weights[k, 1:] - drifted[k, 1:]) * values_before[k]
            for i in np.flatnonzero(np.abs(delta) > REBALANCE_DUST * values_before[k]):
                trades.append({"date": dates[k], "tic": market.tickers[i],
                               "side": "buy" if delta[i] > 0 else "sell", "value": float(abs(delta[i]))})
        details["weights"] = weights.tolist()
    else:
        trade = info["trade"]
        price = info["price"]
        positions = info["position"]
        for k in np.flatnonzero(np.abs(trade) * price > TRADE_DUST * r.values[:-1]):
            trades.append({"date": dates[k], "tic": market.tickers[0],
                           "side": "buy" if trade[k] > 0 else "sell", "shares": float(abs(trade[k])),
                           "price": float(price[k]), "fee": float(fees[k]) if fees is not None else 0.0})
        details["positions"] = positions.tolist()
        if details["turnover"] is None:
            details["turnover"] = np.abs(trade) * price / r.values[:-1]
    details["trades"] = trades
    return details
