"""Datasets by name: the built-in synthetic markets, or a CSV file / folder of CSV files.

The platform keeps its own catalogue of imported datasets and passes their paths (or MarketData)
here; the engine itself knows only the built-ins and paths.
"""
from __future__ import annotations

from pathlib import Path

from engine.data.market import MarketData

SINGLE_ASSET_TASKS = ("algorithmic_trading", "order_execution")
UNKNOWN_DATASET = "unknown dataset {name!r}: not a built-in ({builtins}) and no such file or folder"

# name -> synthetic_market kwargs; single-asset tasks get one asset of the same market.
BUILTINS: dict[str, dict] = {
    "synthetic": {"n_assets": 5, "n_periods": 1500, "seed": 0},
    "synthetic-signal": {"n_assets": 5, "n_periods": 1500, "seed": 0, "signal_strength": 1.0},
}


def load_dataset(name: str, *, task: str = "portfolio_management") -> MarketData:
    from engine.data.readers import read_csv
    from engine.data.synthetic import synthetic_market

    if name in BUILTINS:
        kwargs = dict(BUILTINS[name])
        if task in SINGLE_ASSET_TASKS:
            kwargs["n_assets"] = 1
        return synthetic_market(name=name, **kwargs)
    path = Path(name).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise FileNotFoundError(f"dataset folder {path} holds no .csv file")
        return read_csv(files, name=path.name)
    if path.is_file():
        return read_csv(path, name=path.stem)
    raise FileNotFoundError(UNKNOWN_DATASET.format(name=name, builtins=", ".join(BUILTINS)))
