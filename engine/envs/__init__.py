"""The environments of the tasks (engine.tasks): a gymnasium env and a batched torch twin per task.

    SINGLE_ENVS["portfolio_management"]   -> PortfolioManagementEnv
    BATCHED_ENVS["portfolio_management"]  -> BatchedPortfolioManagementEnv
    PARAMS["portfolio_management"]        -> PortfolioParams
    make_env(task, market, bars, params, num_envs=64)   a batched env over a range of bars

The mappings and the class names below import their module on first use, so importing `engine.envs`
stays cheap and one task's module never has to load the others'.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping

from engine.tasks import TASK_SPECS, TASKS, TaskSpec


def _load(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


class _LazyClasses(Mapping):
    """task -> class, importing the class's module when the task is first looked up."""

    def __init__(self, path_of: Callable[[TaskSpec], str]):
        self._paths = {name: path_of(spec) for name, spec in TASK_SPECS.items()}

    def __getitem__(self, task: str):
        if task not in self._paths:
            raise KeyError(task)
        return _load(self._paths[task])

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._paths)})"


SINGLE_ENVS: Mapping[str, type] = _LazyClasses(lambda spec: spec.single_env)
BATCHED_ENVS: Mapping[str, type] = _LazyClasses(lambda spec: spec.batched_env)
PARAMS: Mapping[str, type] = _LazyClasses(lambda spec: spec.params)

# class name -> "module:Class", for `from engine.envs import PortfolioManagementEnv`
_PATHS = {
    path.split(":")[1]: path
    for spec in TASK_SPECS.values()
    for path in (spec.single_env, spec.batched_env, spec.params)
}

__all__ = ["TASKS", "SINGLE_ENVS", "BATCHED_ENVS", "PARAMS", "make_env", *_PATHS]


def make_env(task: str, market, bars: range, params, *, num_envs: int = 1, device="cpu"):
    """The batched env of `task` on `market`'s bars [bars.start, bars.stop), `num_envs` copies."""
    return BATCHED_ENVS[task](market, num_envs=num_envs, device=device, start=bars.start, end=bars.stop, params=params)


def __getattr__(name: str):
    if name in _PATHS:
        return _load(_PATHS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
