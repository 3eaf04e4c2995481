"""The environments of the three tasks: a gymnasium env and a batched torch twin per task.

    SINGLE_ENVS["portfolio_management"]   -> PortfolioManagementEnv
    BATCHED_ENVS["portfolio_management"]  -> BatchedPortfolioManagementEnv
    PARAMS["portfolio_management"]        -> PortfolioParams

Keys: "portfolio_management", "algorithmic_trading", "order_execution". The mappings and the class
names below import their module on first use, so importing `engine.envs` stays cheap and one
task's module never has to load the others'.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

TASKS = ("portfolio_management", "algorithmic_trading", "order_execution")

# name -> module that defines it
_LOCATIONS = {
    "PortfolioManagementEnv": "engine.envs.portfolio",
    "PortfolioParams": "engine.envs.portfolio",
    "BatchedPortfolioManagementEnv": "engine.envs.portfolio_batched",
    "AlgorithmicTradingEnv": "engine.envs.trading",
    "TradingParams": "engine.envs.trading",
    "BatchedAlgorithmicTradingEnv": "engine.envs.trading_batched",
    "OrderExecutionEnv": "engine.envs.execution",
    "ExecutionParams": "engine.envs.execution",
    "BatchedOrderExecutionEnv": "engine.envs.execution_batched",
}


def _load(name: str):
    return getattr(importlib.import_module(_LOCATIONS[name]), name)


class _LazyClasses(Mapping):
    """task -> class, importing the class's module when the task is first looked up."""

    def __init__(self, names: dict[str, str]):
        self._names = names

    def __getitem__(self, task: str):
        if task not in self._names:
            raise KeyError(task)
        return _load(self._names[task])

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._names)})"


SINGLE_ENVS: Mapping[str, type] = _LazyClasses({
    "portfolio_management": "PortfolioManagementEnv",
    "algorithmic_trading": "AlgorithmicTradingEnv",
    "order_execution": "OrderExecutionEnv",
})
BATCHED_ENVS: Mapping[str, type] = _LazyClasses({
    "portfolio_management": "BatchedPortfolioManagementEnv",
    "algorithmic_trading": "BatchedAlgorithmicTradingEnv",
    "order_execution": "BatchedOrderExecutionEnv",
})
PARAMS: Mapping[str, type] = _LazyClasses({
    "portfolio_management": "PortfolioParams",
    "algorithmic_trading": "TradingParams",
    "order_execution": "ExecutionParams",
})

__all__ = ["TASKS", "SINGLE_ENVS", "BATCHED_ENVS", "PARAMS", *_LOCATIONS]


def __getattr__(name: str):
    if name in _LOCATIONS:
        return _load(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
