"""A backtest of a run config's agent with no trainer: from a checkpoint's weights or as the agent
starts, on one evaluation env, with no optimizer step and no run directory."""
from __future__ import annotations

from pathlib import Path

from engine.assembly import RunParts, assemble
from engine.backtest.backtester import run_backtest
from engine.backtest.report import BacktestReport
from engine.config import RunConfig
from engine.data.market import MarketData

CHECKPOINT_MISSING = "the checkpoint to backtest is missing: {path}"


def backtest(config: RunConfig, *, checkpoint: str | Path | None = None, split: str = "test",
             benchmark: str | None = None, market: MarketData | None = None) -> BacktestReport:
    """The report of `config`'s agent over `split` against `benchmark` (default: the task's).

    checkpoint: weights written by the trainer (or Agent.save), loaded without their RNG states;
        None backtests the agent as it starts, which is all a baseline has. A missing file raises
        FileNotFoundError naming it.
    market: the data (default: the dataset config.dataset names).
    """
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise FileNotFoundError(CHECKPOINT_MISSING.format(path=checkpoint))
    parts = assemble(config, market=market, num_envs=1)
    if checkpoint is not None:
        parts.agent.load(checkpoint, restore_rng=False)
    return report_of(parts, split=split, benchmark=benchmark)


def report_of(parts: RunParts, *, split: str = "test", benchmark: str | None = None) -> BacktestReport:
    """The report of `parts.agent` with its current weights over `split` of `parts.market`."""
    report = run_backtest(parts.agent, parts.config.task, parts.market, getattr(parts.splits, split),
                          parts.env_params, benchmark=benchmark, device=parts.device)
    report["split"] = split
    report["config"] = parts.config.model_dump(mode="json")
    return report
