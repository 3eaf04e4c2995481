"""TradeMaster's default per-bar features, computed causally from prices.

Every value at bar t uses bars <= t only, so an observation built from them never looks ahead.
"""
from __future__ import annotations

import numpy as np

ZD_WINDOWS = (5, 10, 15, 20, 25, 30)


def price_features(prices: dict[str, np.ndarray]) -> tuple[tuple[str, ...], np.ndarray]:
    """(names, features) from (T, N) price arrays; features is float32 (T, N, F).

    zopen/zhigh/zlow = x / close - 1 (for the prices present), zadjcp = adjcp / close - 1 (when adjcp
    is present), zclose = close / previous close - 1 (0 at the first bar), and zd_k = mean of the last
    k adjcp (close when there is no adjcp) / adjcp - 1 for k in ZD_WINDOWS, the mean taken over the
    bars available while fewer than k exist. Prices must be positive; the result is then finite.
    """
    close = np.asarray(prices["close"], dtype=np.float64)
    names: list[str] = []
    columns: list[np.ndarray] = []
    for key in ("open", "high", "low"):
        if key in prices:
            names.append(f"z{key}")
            columns.append(np.asarray(prices[key], dtype=np.float64) / close - 1.0)
    if "adjcp" in prices:
        names.append("zadjcp")
        columns.append(np.asarray(prices["adjcp"], dtype=np.float64) / close - 1.0)
    zclose = np.zeros_like(close)
    zclose[1:] = close[1:] / close[:-1] - 1.0
    names.append("zclose")
    columns.append(zclose)
    base = np.asarray(prices.get("adjcp", close), dtype=np.float64)
    for k in ZD_WINDOWS:
        names.append(f"zd_{k}")
        columns.append(trailing_mean(base, k) / base - 1.0)
    t, n = close.shape
    features = np.stack(columns, axis=-1) if columns else np.zeros((t, n, 0))
    return tuple(names), features.astype(np.float32)


def trailing_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean of x over bars t-k+1..t along axis 0; over bars 0..t while t < k-1."""
    csum = np.cumsum(x, axis=0)
    out = np.empty_like(csum)
    head = min(k, len(x))
    out[:head] = csum[:head] / np.arange(1, head + 1).reshape((-1,) + (1,) * (x.ndim - 1))
    if len(x) > k:
        # Summing differences of a running total is exact enough for prices (relative error ~1e-12).
        out[k:] = (csum[k:] - csum[:-k]) / k
    return out
