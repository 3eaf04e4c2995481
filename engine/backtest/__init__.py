"""Backtests: a run config's agent over a split against a benchmark, as a JSON-safe report.

    report = backtest(config, checkpoint="runs/42/best.pt")   # report["metrics"]["sharpe"], ...
"""
from engine.backtest.report import BacktestReport
from engine.backtest.run import backtest

__all__ = ["BacktestReport", "backtest"]
