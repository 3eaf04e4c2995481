"""The in-memory market every environment, agent and backtest reads.

One `MarketData` holds a rectangular panel: T bars (dates) × N tickers, prices as float64 arrays of
shape (T, N) and features as a float32 array of shape (T, N, F). Rectangular because every env steps
all assets on a common clock; the readers make it so (or refuse the file).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

PRICE_COLUMNS = ("open", "high", "low", "close", "adjcp", "volume")
NOT_IN_MARKET = "tickers {missing} are not in the market (tickers: {tickers})"


@dataclass(frozen=True)
class MarketData:
    """A rectangular panel of bars.

    dates: datetime64[ns], shape (T,), strictly increasing.
    tickers: N ticker names, in column order of every array.
    prices: name -> float64 array (T, N). "close" is always present; the other PRICE_COLUMNS when the
        source had them.
    features: float32 array (T, N, F), finite; what the agents observe.
    feature_names: F names, in the last-axis order of `features`.
    frequency: "daily", "hourly", "minute", ... (see engine.data.frequency).
    periods_per_year: bars per year, used to annualise returns and volatility.
    name: a label for reports.
    """

    dates: np.ndarray
    tickers: tuple[str, ...]
    prices: dict[str, np.ndarray]
    features: np.ndarray
    feature_names: tuple[str, ...]
    frequency: str
    periods_per_year: float
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        t, n = len(self.dates), len(self.tickers)
        if "close" not in self.prices:
            raise ValueError("MarketData needs a 'close' price array")
        for key, arr in self.prices.items():
            if arr.shape != (t, n):
                raise ValueError(f"prices[{key!r}] has shape {arr.shape}, expected {(t, n)}")
        if self.features.shape[:2] != (t, n) or self.features.shape[2] != len(self.feature_names):
            raise ValueError(
                f"features have shape {self.features.shape}, expected {(t, n, len(self.feature_names))}"
            )

    def __len__(self) -> int:
        return len(self.dates)

    @property
    def n_assets(self) -> int:
        return len(self.tickers)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def close(self) -> np.ndarray:
        return self.prices["close"]

    def price(self, name: str) -> np.ndarray | None:
        return self.prices.get(name)

    def slice(self, start: int, stop: int) -> "MarketData":
        """Bars [start, stop) as a new MarketData (views, no copies)."""
        return replace(
            self,
            dates=self.dates[start:stop],
            prices={k: v[start:stop] for k, v in self.prices.items()},
            features=self.features[start:stop],
        )

    def select(self, tickers: Sequence[str]) -> "MarketData":
        """The panel of `tickers` only, in that order; the market itself when they are all its tickers.

        ValueError naming a ticker the market lacks.
        """
        tickers = tuple(tickers)
        if tickers == self.tickers:
            return self
        missing = [t for t in tickers if t not in self.tickers]
        if missing:
            raise ValueError(NOT_IN_MARKET.format(missing=", ".join(missing), tickers=", ".join(self.tickers)))
        columns = [self.tickers.index(t) for t in tickers]
        return replace(
            self,
            tickers=tickers,
            prices={k: v[:, columns] for k, v in self.prices.items()},
            features=self.features[:, columns],
        )

    def index_of(self, date) -> int:
        """Index of the first bar at or after `date`."""
        return int(np.searchsorted(self.dates, np.datetime64(date, "ns"), side="left"))
