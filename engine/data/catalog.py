"""Datasets by name: the built-in synthetic markets, or a CSV file / folder of CSV files.

The platform keeps its own catalogue of imported datasets and passes their paths (or MarketData)
here; the engine itself knows only the built-ins and paths.

A built-in is the same market whatever the task: portfolio management trades all its assets, the
single-asset tasks (engine.tasks) its first. A file is loaded whole; a single-asset env then
needs its `ticker` parameter when the file holds several.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.data.market import MarketData
from engine.tasks import TASK_SPECS

UNKNOWN_DATASET = "unknown dataset {name!r}: not a built-in ({builtins}) and no such file or folder"
UNKNOWN_BUILTIN = "unknown built-in market {name!r}; built-ins: {builtins}"

# name -> synthetic_market kwargs
BUILTINS: dict[str, dict] = {
    "synthetic": {"n_assets": 5, "n_periods": 1500, "seed": 0},
    "synthetic-signal": {"n_assets": 5, "n_periods": 1500, "seed": 0, "signal_strength": 1.0},
}


def builtin_market(name: str) -> MarketData:
    """Every asset of the built-in market `name`; ValueError when there is no such built-in."""
    from engine.data.synthetic import synthetic_market

    if name not in BUILTINS:
        raise ValueError(UNKNOWN_BUILTIN.format(name=name, builtins=", ".join(BUILTINS)))
    return synthetic_market(name=name, **BUILTINS[name])


def traded_tickers(tickers: Sequence[str], task: str) -> tuple[str, ...]:
    """Which of a built-in market's `tickers` `task` trades: all of them, or the first for a
    single-asset task."""
    return tuple(tickers[:1]) if TASK_SPECS[task].single_asset else tuple(tickers)


def load_dataset(name: str, *, task: str = "portfolio_management") -> MarketData:
    """The market a run of `task` on dataset `name` trades: the built-in's traded tickers, or the
    whole file or folder."""
    from engine.data.readers import read_csv

    if name in BUILTINS:
        market = builtin_market(name)
        return market.select(traded_tickers(market.tickers, task))
    path = Path(name).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise FileNotFoundError(f"dataset folder {path} holds no .csv file")
        return read_csv(files, name=path.name)
    if path.is_file():
        return read_csv(path, name=path.stem)
    raise FileNotFoundError(UNKNOWN_DATASET.format(name=name, builtins=", ".join(BUILTINS)))
