"""The three tasks, each described once: the config's task names, the gymnasium ids, the env classes,
the backtester's benchmark and evaluation, and the platform's labels all read this table.

Cheap to import (no torch, no gymnasium): the classes are named by "module:Class" paths, which
engine.envs loads on first use and gymnasium.register takes as entry points.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    name: the config's value ("portfolio_management").
    label: what a person reads ("Portfolio management").
    env_id: the gymnasium id of the single env.
    single_env, batched_env, params: "module:Class" of the gymnasium env, its batched torch twin and
        their parameter dataclass.
    single_asset: the env trades one asset of the market (a built-in market's first; see
        engine.data.catalog).
    benchmark: the agent a backtest compares against when none is named.
    evaluation: "episode": one deterministic episode over the split, measured as an equity curve;
        "orders": consecutive orders back to back over the split, measured by implementation shortfall.
    """

    name: str
    label: str
    env_id: str
    single_env: str
    batched_env: str
    params: str
    single_asset: bool
    benchmark: str
    evaluation: Literal["episode", "orders"]
    # The assets a dataset needs for the task: a portfolio is allocated between at least two.
    min_assets: int = 1


_SPECS = (
    TaskSpec(
        name="portfolio_management",
        label="Portfolio management",
        env_id="TradeMaster/PortfolioManagement-v0",
        single_env="engine.envs.portfolio:PortfolioManagementEnv",
        batched_env="engine.envs.portfolio_batched:BatchedPortfolioManagementEnv",
        params="engine.envs.portfolio:PortfolioParams",
        single_asset=False,
        benchmark="buy_and_hold",
        evaluation="episode",
        min_assets=2,
    ),
    TaskSpec(
        name="algorithmic_trading",
        label="Algorithmic trading",
        env_id="TradeMaster/AlgorithmicTrading-v0",
        single_env="engine.envs.trading:AlgorithmicTradingEnv",
        batched_env="engine.envs.trading_batched:BatchedAlgorithmicTradingEnv",
        params="engine.envs.trading:TradingParams",
        single_asset=True,
        benchmark="buy_and_hold",
        evaluation="episode",
    ),
    TaskSpec(
        name="order_execution",
        label="Order execution",
        env_id="TradeMaster/OrderExecution-v0",
        single_env="engine.envs.execution:OrderExecutionEnv",
        batched_env="engine.envs.execution_batched:BatchedOrderExecutionEnv",
        params="engine.envs.execution:ExecutionParams",
        single_asset=True,
        benchmark="twap",
        evaluation="orders",
    ),
)

TASK_SPECS: dict[str, TaskSpec] = {spec.name: spec for spec in _SPECS}
TASKS: tuple[str, ...] = tuple(TASK_SPECS)


def task_choices() -> list[tuple[str, str]]:
    """(name, label) of every task, in TASKS order: a form's or a model field's choices."""
    return [(spec.name, spec.label) for spec in _SPECS]
