"""Pieces the one-asset envs (trading, execution) and their batched twins share.

They mirror the helpers of engine/envs/portfolio.py (same names, rules and messages), so the
portfolio env can import them from here as well.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.data.market import MarketData

# Market features are clipped to [-OBS_CLIP, OBS_CLIP] before they are observed: z-scored features
# occasionally carry extreme outliers that would otherwise dominate a network's first layer.
OBS_CLIP = 10.0

BAD_RANGE = "start and end must satisfy 0 <= start and start + 2 <= end <= {n_bars}, got start={start}, end={end}"
WINDOW_TOO_LONG = (
    "window {window} does not fit bars [{start}, {end}): the first decision bar {first} must leave at "
    "least one later bar to step to"
)
PARAMS_AND_KWARGS = "pass either params or keyword parameters, not both (got params and {names})"
BAD_CLOSE = "close prices must be finite and > 0 over the bars the env uses"
BAD_NUM_ENVS = "num_envs must be >= 1, got {num_envs}"
BAD_ACTIONS = "actions must have shape {expected}, got {got}"
MANY_TICKERS = (
    "{task} takes one asset; the market has {n} tickers ({tickers}): pass ticker= to pick one"
)
UNKNOWN_TICKER = "ticker {ticker!r} is not in the market (tickers: {tickers})"


def resolve_params(cls: type, params, kwargs: dict):
    """`params` as given, or `cls(**kwargs)` (what gymnasium.make's keyword arguments become)."""
    if params is None:
        return cls(**kwargs)
    if kwargs:
        raise ValueError(PARAMS_AND_KWARGS.format(names=", ".join(sorted(kwargs))))
    return params


def default_market(n_assets: int = 1) -> MarketData:
    from engine.data.synthetic import synthetic_market

    return synthetic_market(n_assets=n_assets)


def one_asset(market: MarketData, ticker: str | None, task: str) -> MarketData:
    """The market restricted to one ticker: `ticker` when given, else the market's only ticker.

    ValueError when the market has several tickers and none was named, or the name is unknown.
    """
    names = ", ".join(market.tickers)
    if ticker is None:
        if market.n_assets != 1:
            raise ValueError(MANY_TICKERS.format(task=task, n=market.n_assets, tickers=names))
        return market
    if ticker not in market.tickers:
        raise ValueError(UNKNOWN_TICKER.format(ticker=ticker, tickers=names))
    return market.select((ticker,))


@dataclass(frozen=True)
class EpisodeBars:
    """Which bars an env trades over.

    start, end: the env's range [start, end) of market bars.
    first: the first decision bar, max(start, window - 1).
    last_start: the last bar an episode may start at (== first unless episodes have random starts).
    """

    start: int
    end: int
    first: int
    last_start: int


def episode_bars(n_bars: int, start: int | None, end: int | None, window: int,
                 episode_length: int | None) -> EpisodeBars:
    """The bar range of an env; ValueError naming `start`/`end` or `window` when it cannot hold a step.

    An episode of episode_length steps from bar s ends at bar s + episode_length, so random starts
    go up to end - 1 - episode_length. An episode_length longer than the range is not an error:
    every episode then starts at `first` and runs to the end of the data.
    """
    start = 0 if start is None else int(start)
    end = n_bars if end is None else int(end)
    if start < 0 or end > n_bars or end - start < 2:
        raise ValueError(BAD_RANGE.format(n_bars=n_bars, start=start, end=end))
    first = max(start, window - 1)
    if first > end - 2:
        raise ValueError(WINDOW_TOO_LONG.format(window=window, start=start, end=end, first=first))
    last_start = first
    if episode_length is not None:
        last_start = max(first, end - 1 - episode_length)
    return EpisodeBars(start=start, end=end, first=first, last_start=last_start)


def check_close(market: MarketData, lo: int, end: int) -> None:
    close = market.close[lo:end]
    if not (np.isfinite(close).all() and (close > 0).all()):
        raise ValueError(BAD_CLOSE)


def window_table(market: MarketData, bars: EpisodeBars, window: int) -> np.ndarray:
    """(end - first, W*N*F) float32: row k is the clipped (W, N, F) feature window ending at bar
    first + k, flattened in C order. Built once, so an observation is a row lookup, and the single
    env and its batched twin observe exactly the same numbers."""
    lo = bars.first - window + 1
    feats = np.clip(market.features[lo:bars.end], -OBS_CLIP, OBS_CLIP).astype(np.float32)
    # sliding_window_view puts the window axis last: (rows, N, F, W) -> (rows, W, N, F).
    windows = np.lib.stride_tricks.sliding_window_view(feats, window, axis=0).transpose(0, 3, 1, 2)
    # Writeable too: with window 1 the reshape is a read-only view, which torch.from_numpy warns about.
    return np.require(windows.reshape(windows.shape[0], -1), requirements=["C", "W"])


def iso_date(market: MarketData, bar: int) -> str:
    return str(np.datetime_as_string(market.dates[bar], unit="s"))


class StartPositions:
    """Where the copies of a batched env start their episodes, as positions counted from the first
    decision bar: all at 0, or, with random starts, uniform over [0, last_start] drawn from a
    generator that `seed` (called by reset) makes reproducible."""

    def __init__(self, *, num_envs: int, last_start: int, random: bool, device: torch.device):
        self.num_envs, self.last_start, self.device = num_envs, last_start, device
        self.random = random and last_start > 0
        self.generator = torch.Generator(device=device)
        self.generator.seed()

    def seed(self, seed: int | None) -> None:
        if seed is not None:
            self.generator.manual_seed(int(seed))

    def draw(self) -> torch.Tensor:
        if not self.random:
            return torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        return torch.randint(0, self.last_start + 1, (self.num_envs,), generator=self.generator, device=self.device)
