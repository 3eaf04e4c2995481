"""The demo's markets, as TradeMaster long CSV: one row per (date, tic), columns LONG_COLUMNS.

- S&P 500, daily, 1999-01-04 .. 2018-12-31 (5,031 bars of open, high, low, close, adjusted close and
  volume): real prices that ship inside the `arch` package (arch.data.sp500; NCSA licence), so the
  demo needs no download. One series: it serves the single-asset tasks, algorithmic trading and order
  execution (which sizes its fills by the volume).
- The engine's synthetic market (engine.data.synthetic_market, the built-in "synthetic": 5 assets,
  1,500 business days) for portfolio management. arch's only other price series is the NASDAQ
  Composite, whose daily returns move with the S&P 500's (correlation 0.89): two indices are not a
  portfolio worth allocating.

The files are written at seed time from the package and the generator, not kept in the repository.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.data import MarketData, synthetic_market
from engine.data.catalog import BUILTINS

LONG_COLUMNS = ("date", "tic", "open", "high", "low", "close", "adjcp", "volume")
SP500_TICKER = "SPX"
SYNTHETIC = "synthetic"

ARCH_MISSING = (
    "the demo's S&P 500 prices ship with the 'arch' package, which is not installed: "
    "pip install -r requirements.txt"
)



class DemoDataUnavailable(Exception):
    """A package the demo's data ships in is not installed."""


# arch's column -> ours
_ARCH_COLUMNS = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Adj Close": "adjcp",
                 "Volume": "volume"}


def sp500_frame() -> pd.DataFrame:
    """arch's S&P 500 daily bars in the long format (ticker SPX)."""
    try:
        # Imported here: arch loads statsmodels (about a second), and only seeding needs it.
        from arch.data import sp500
    except ImportError:
        raise DemoDataUnavailable(ARCH_MISSING) from None
    raw = sp500.load()
    frame = raw.rename(columns=_ARCH_COLUMNS)[list(_ARCH_COLUMNS.values())]
    frame.insert(0, "tic", SP500_TICKER)
    frame.insert(0, "date", raw.index.strftime("%Y-%m-%d"))
    return frame.reset_index(drop=True)


def synthetic_frame() -> pd.DataFrame:
    """The engine's built-in "synthetic" market (all its assets) in the long format."""
    return market_frame(synthetic_market(name=SYNTHETIC, **BUILTINS[SYNTHETIC]))


def market_frame(market: MarketData) -> pd.DataFrame:
    """A MarketData's prices in the long format, rows by date then ticker. Features are left out: the
    reader computes the same price features from the prices (engine.data.features.price_features)."""
    t, n = len(market), market.n_assets
    columns = {
        "date": np.repeat(pd.DatetimeIndex(market.dates).strftime("%Y-%m-%d").to_numpy(), n),
        "tic": np.tile(np.asarray(market.tickers, dtype=object), t),
    }
    for name in LONG_COLUMNS[2:]:
        if name in market.prices:
            columns[name] = market.prices[name].reshape(-1)  # (T, N) in C order: date-major, as the rows
    return pd.DataFrame(columns)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write `frame` as CSV; floats are written in full (repr), so reading the file back gives the
    same float64 values."""
    frame.to_csv(path, index=False)
    return path
