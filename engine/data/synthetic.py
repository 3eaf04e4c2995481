"""A synthetic market with known structure, for defaults, tests and demos.

Log-returns are correlated across assets (constant pairwise correlation, via a Cholesky factor) and
switch among three Markov regimes (calm bull, bear, high volatility), so strategies meet trends,
drawdowns and volatility clusters. With signal_strength > 0 a feature column "signal" is planted
whose value at bar t is correlated with the asset's return from bar t to t+1: it is generated at t
and then drives that return, so it is a legitimate, known-at-t predictor (the only intended edge).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from engine.data.features import price_features
from engine.data.frequency import FREQUENCIES, periods_per_year
from engine.data.market import MarketData

# Per-regime (annual drift, annual volatility) of log-returns, scaled to bars by periods_per_year.
REGIMES: dict[str, tuple[float, float]] = {
    "bull": (0.15, 0.12),
    "bear": (-0.20, 0.25),
    "volatile": (0.0, 0.45),
}
# Probability of staying in each regime per bar: expected stays of 100, 50 and 30 bars.
STAY = np.array([0.99, 0.98, 1 - 1 / 30])
START_REGIME_P = np.array([0.6, 0.25, 0.15])

# pandas offsets for the non-daily frequencies; intraday bars are kept on weekdays only (equity).
_PANDAS_FREQ = {
    "minute": "min", "5min": "5min", "15min": "15min", "30min": "30min", "hourly": "h", "4hourly": "4h",
    "weekly": "W-FRI", "monthly": "BME",
}


def synthetic_market(*, n_assets: int = 5, n_periods: int = 1000, seed: int = 0, start: str = "2015-01-02",
                     frequency: str = "daily", correlation: float = 0.3, signal_strength: float = 0.0,
                     name: str = "synthetic") -> MarketData:
    """A deterministic (per seed) MarketData of n_periods bars × n_assets assets.

    Prices: open/high/low/close/adjcp/volume, close starting between 50 and 150 per asset, adjcp =
    close, high >= max(open, close), low <= min(open, close), all > 0, volume > 0. Dates: business
    days for "daily", weekday bars for intraday frequencies, Fridays for "weekly", business month ends
    for "monthly"; periods_per_year is the equity one. Features: engine.data.features.price_features,
    plus "signal" when signal_strength > 0 (signal_t = (s·z + e) / sqrt(1 + s²), z the standardised
    shock of the return t -> t+1, e independent noise; its correlation with z is s / sqrt(1 + s²)).
    The prices of a seed do not depend on signal_strength. meta holds "asset_class", "seed",
    "regime_names" and "regime" (int (T,): the regime of the return from bar t to t+1).
    """
    _check(n_assets, n_periods, frequency, correlation, signal_strength)
    rng = np.random.default_rng(seed)
    t, n = n_periods, n_assets
    ppy = periods_per_year(frequency, "equity")

    start_price = rng.uniform(50.0, 150.0, size=n)
    vol_scale = rng.uniform(0.8, 1.25, size=n)
    regime = _regime_path(rng, t)
    cov = np.full((n, n), correlation) + (1.0 - correlation) * np.eye(n)
    shocks = rng.standard_normal((t, n)) @ np.linalg.cholesky(cov).T  # row t drives the return t -> t+1

    drift = np.array([d for d, _ in REGIMES.values()])[regime] / ppy
    sigma = np.array([s for _, s in REGIMES.values()])[regime] / math.sqrt(ppy)
    bar_sigma = sigma[:, None] * vol_scale[None, :]
    log_ret = (drift[:, None] - 0.5 * bar_sigma**2) + bar_sigma * shocks
    log_close = np.log(start_price)[None, :] + np.vstack([np.zeros((1, n)), np.cumsum(log_ret[:-1], axis=0)])
    close = np.exp(log_close)

    # Bar t's open gaps from close t-1; the bar's sigma (the regime of the return into t) sizes the range.
    prev_close = np.vstack([close[:1], close[:-1]])
    into_sigma = np.vstack([bar_sigma[:1], bar_sigma[:-1]])
    open_ = prev_close * np.exp(0.25 * into_sigma * rng.standard_normal((t, n)))
    high = np.maximum(open_, close) * np.exp(np.abs(0.5 * into_sigma * rng.standard_normal((t, n))))
    low = np.minimum(open_, close) * np.exp(-np.abs(0.5 * into_sigma * rng.standard_normal((t, n))))
    into_shock = np.vstack([np.zeros((1, n)), shocks[:-1]])
    base_volume = np.exp(rng.uniform(np.log(1e5), np.log(1e7), size=n))
    volume = base_volume * np.exp(0.3 * rng.standard_normal((t, n))) * (1.0 + np.abs(into_shock))
    noise = rng.standard_normal((t, n))  # drawn always, so prices never depend on signal_strength

    prices = {"open": open_, "high": high, "low": low, "close": close, "adjcp": close.copy(), "volume": volume}
    names, features = price_features(prices)
    if signal_strength > 0:
        signal = (signal_strength * shocks + noise) / math.sqrt(1.0 + signal_strength**2)
        features = np.concatenate([features, signal[..., None].astype(np.float32)], axis=-1)
        names = names + ("signal",)
    return MarketData(
        dates=_dates(start, t, frequency),
        tickers=tuple(f"SYN{i:0{max(2, len(str(n - 1)))}d}" for i in range(n)),
        prices=prices,
        features=features,
        feature_names=names,
        frequency=frequency,
        periods_per_year=ppy,
        name=name,
        meta={"asset_class": "equity", "seed": seed, "regime_names": tuple(REGIMES), "regime": regime},
    )


def _check(n_assets, n_periods, frequency, correlation, signal_strength) -> None:
    if n_assets < 1:
        raise ValueError(f"n_assets must be >= 1, got {n_assets}")
    if n_periods < 2:
        raise ValueError(f"n_periods must be >= 2, got {n_periods}")
    if frequency not in FREQUENCIES:
        raise ValueError(f"frequency must be one of {', '.join(FREQUENCIES)}, got {frequency!r}")
    # A constant-correlation matrix is positive definite exactly for -1/(n-1) < rho < 1.
    lower = -1.0 / (n_assets - 1) if n_assets > 1 else -1.0
    if not lower < correlation < 1.0:
        raise ValueError(f"correlation must be in ({lower:g}, 1) for {n_assets} assets, got {correlation}")
    if not signal_strength >= 0:
        raise ValueError(f"signal_strength must be >= 0, got {signal_strength}")


def _regime_path(rng: np.random.Generator, t: int) -> np.ndarray:
    """A Markov chain over REGIMES: stay with probability STAY, else move to another regime uniformly."""
    k = len(REGIMES)
    stay_draw = rng.random(t)
    move_draw = rng.integers(1, k, size=t)  # offset to another regime
    regime = np.empty(t, dtype=np.int64)
    regime[0] = rng.choice(k, p=START_REGIME_P)
    current = int(regime[0])
    for i in range(1, t):
        if stay_draw[i] >= STAY[current]:
            current = (current + int(move_draw[i])) % k
        regime[i] = current
    return regime


def _dates(start: str, t: int, frequency: str) -> np.ndarray:
    if frequency == "daily":
        index = pd.bdate_range(start, periods=t)
    elif frequency in ("weekly", "monthly"):
        index = pd.date_range(start, periods=t, freq=_PANDAS_FREQ[frequency])
    else:
        # Generate enough calendar bars that t of them fall on weekdays (5/7 of them), then keep those.
        index = pd.date_range(start, periods=t * 7 // 5 + 2 * 24 * 60, freq=_PANDAS_FREQ[frequency])
        index = index[index.day_of_week < 5][:t]
    return index.to_numpy().astype("datetime64[ns]")
