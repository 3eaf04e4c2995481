"""A feed that replays a period of a dataset bar by bar, as fast as it is polled or at a set pace.

A deployment on a replay sees what a live one would: bar t, and the market up to it. The pace is
measured with an injectable clock, so a test moves time itself and never sleeps.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from engine.data.market import MarketData
from engine.live.venue import Bar


class ReplayFeed:
    """The Feed protocol (engine/live/venue.py) over rows `bars` of `market`, in order.

    bars: increasing rows of `market` (a range with step >= 1, not empty).
    bars_per_second: None: every poll returns the next bar until the end. Otherwise the k-th bar this
        feed returns is due at first_poll + k / bars_per_second on `clock`, so a loop that falls behind
        catches up one bar per poll without drifting.
    start_after: a restarted deployment continues after the last bar it handled: the first bar returned
        is the first of `bars` after this row (any row before the range, or one within it).
    clock: seconds, monotonic (time.monotonic); a test passes its own.
    """

    def __init__(self, market: MarketData, bars: range, *, bars_per_second: float | None = None,
                 start_after: int | None = None, clock: Callable[[], float] = time.monotonic):
        _check(market, bars, bars_per_second, start_after)
        self.symbols = market.tickers
        self._market = market
        skip = 0 if start_after is None or start_after < bars.start else (start_after - bars.start) // bars.step + 1
        self._bars = bars[skip:]
        self._next = 0  # position in self._bars of the next bar to return
        self._rate = bars_per_second
        self._clock = clock
        self._first_poll: float | None = None

    def market(self) -> MarketData:
        """The whole market: its features are causal, and the caller reads no row after the latest bar."""
        return self._market

    def poll(self) -> Bar | None:
        if self.finished:
            return None
        if self._rate is not None:
            now = self._clock()
            if self._first_poll is None:
                self._first_poll = now
            elif now < self._due():
                return None
        t = self._bars[self._next]
        self._next += 1
        return self._bar(t)

    @property
    def finished(self) -> bool:
        return self._next >= len(self._bars)

    def seconds_to_next(self) -> float:
        """Seconds until the next bar is due; 0 when it is due now, before the first poll, without a
        pace, and once finished (then no bar will come: the loop asks `finished` first)."""
        if self._rate is None or self._first_poll is None or self.finished:
            return 0.0
        return max(self._due() - self._clock(), 0.0)

    def close(self) -> None:
        """Nothing to release: the market is in memory."""

    def _due(self) -> float:
        return self._first_poll + self._next / self._rate

    def _bar(self, t: int) -> Bar:
        m = self._market
        close = m.close[t]

        def row(name: str, missing: np.ndarray) -> np.ndarray:
            # Copies: a consumer that writes into a bar must not write into the market.
            column = m.price(name)
            return np.array(missing if column is None else column[t], dtype=np.float64)

        return Bar(
            index=int(t),
            time=str(np.datetime_as_string(m.dates[t], unit="s")),
            symbols=m.tickers,
            open=row("open", close),
            high=row("high", close),
            low=row("low", close),
            close=np.array(close, dtype=np.float64),
            volume=row("volume", np.full(m.n_assets, np.nan)),
        )


def _check(market: MarketData, bars: range, bars_per_second: float | None, start_after: int | None) -> None:
    if not isinstance(bars, range) or bars.step < 1 or len(bars) == 0:
        raise ValueError(f"bars must be a non-empty increasing range, got {bars!r}")
    if bars[0] < 0 or bars[-1] >= len(market):
        raise ValueError(f"bars {bars!r} are not all rows of the market (rows 0 to {len(market) - 1})")
    if bars_per_second is not None and not (math.isfinite(bars_per_second) and bars_per_second > 0):
        raise ValueError(f"bars_per_second must be a finite number > 0 or None, got {bars_per_second!r}")
    if start_after is not None and start_after > bars[-1]:
        raise ValueError(f"start_after must be a row within bars {bars!r} or before it, got {start_after!r}")
