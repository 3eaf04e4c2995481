"""Train / valid / test splits of a market, by whole bars (every ticker of a date in the same split)."""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.data.errors import DataError
from engine.data.market import MarketData

SPLITS = ("train", "valid", "test")

PARTIAL_RANGES = "give the train, valid and test date ranges together, or none of them (missing: {missing})"
BAD_RANGE = "{split} range must be a (start_date, end_date) pair, got {value!r}"
BAD_DATE = "{split} range: cannot parse {value!r} as a date"
REVERSED = "{split} range starts after it ends ({start} > {end})"
EMPTY_SPLIT = "{split} split has no bars{detail}"
OVERLAP = "the {a} and {b} ranges overlap ({a}: {a_range}, {b}: {b_range})"
BAD_RATIOS = "ratios must be 3 numbers (train, valid, test), got {ratios}"
RATIO_NOT_POSITIVE = "{split} ratio must be > 0, got {value}"
RATIOS_SUM = "ratios must sum to 1, got {ratios} (sum {total:g})"

_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


@dataclass(frozen=True)
class Splits:
    """Bar indices into the market of each split, as Python ranges; disjoint, each non-empty."""

    train: range
    valid: range
    test: range

    def as_dates(self, market: MarketData) -> dict[str, tuple[np.datetime64, np.datetime64]]:
        """split name -> (first date, last date) of its bars, for reports."""
        return {name: (market.dates[r.start], market.dates[r.stop - 1]) for name, r in self.items()}

    def items(self) -> tuple[tuple[str, range], ...]:
        return tuple((name, getattr(self, name)) for name in SPLITS)


def split_market(market: MarketData, *, train=None, valid=None, test=None,
                 ratios=(0.7, 0.15, 0.15)) -> Splits:
    """Split the bars of `market` by date ranges or, without them, by `ratios` in time order.

    train/valid/test: (start_date, end_date) pairs, both ends inclusive, as strings, dates, datetimes
        or numpy datetime64; all three or none. An end given as a plain date ("2020-12-31" or a
        datetime.date) includes the whole day, so bars stamped 23:59:59 belong to it. Ranges may come
        in any order and leave gaps, but must not overlap and must each hold at least one bar.
    ratios: shares of the bars for train, valid, test (positive, summing to 1); split boundaries are
        floor(T * cumulative share), so 100 bars give 70/15/15 and 10 bars 7/1/2.
    Every problem is a DataError naming the split.
    """
    ranges = {"train": train, "valid": valid, "test": test}
    given = [k for k, v in ranges.items() if v is not None]
    if given:
        if len(given) < 3:
            missing = ", ".join(k for k in SPLITS if k not in given)
            raise DataError(PARTIAL_RANGES.format(missing=missing))
        return _by_dates(market, ranges)
    return _by_ratios(len(market), ratios)


def _by_dates(market: MarketData, ranges: dict) -> Splits:
    bounds = {name: _bounds(name, value) for name, value in ranges.items()}
    ordered = sorted(bounds.items(), key=lambda kv: kv[1][0])
    for (a, (_, a_stop)), (b, (b_start, _)) in zip(ordered, ordered[1:]):
        if b_start < a_stop:  # half-open [start, stop) intervals
            raise DataError(OVERLAP.format(a=a, b=b, a_range=_show(ranges[a]), b_range=_show(ranges[b])))
    out = {}
    for name, (start, stop) in bounds.items():
        first = int(np.searchsorted(market.dates, start, side="left"))
        last = int(np.searchsorted(market.dates, stop, side="left"))
        if last <= first:
            detail = (f": the market has no date in {_show(ranges[name])} "
                      f"(it spans {str(market.dates[0])[:10]}..{str(market.dates[-1])[:10]})" if len(market) else "")
            raise DataError(EMPTY_SPLIT.format(split=name, detail=detail))
        out[name] = range(first, last)
    return Splits(**out)


def _bounds(name: str, value) -> tuple[np.datetime64, np.datetime64]:
    """[start, stop) in datetime64[ns]; a date-only end is extended to the end of its day."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise DataError(BAD_RANGE.format(split=name, value=value))
    start, end = (_timestamp(name, v) for v in value)
    if start > end:
        raise DataError(REVERSED.format(split=name, start=value[0], end=value[1]))
    stop = end + pd.Timedelta(days=1) if _date_only(value[1]) else end + pd.Timedelta(1, "ns")
    return np.datetime64(start.to_datetime64(), "ns"), np.datetime64(stop.to_datetime64(), "ns")


def _timestamp(name: str, value) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataError(BAD_DATE.format(split=name, value=value)) from None
    if stamp is pd.NaT:
        raise DataError(BAD_DATE.format(split=name, value=value))
    # Market dates are naive UTC (see readers), so aware bounds are compared in UTC.
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _date_only(value) -> bool:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return True
    if isinstance(value, np.datetime64):
        return np.datetime_data(value.dtype)[0] in ("D", "W", "M", "Y")
    return isinstance(value, str) and bool(_DATE_ONLY.match(value))


def _by_ratios(t: int, ratios) -> Splits:
    try:
        shares = [float(r) for r in ratios]
    except (TypeError, ValueError):
        raise DataError(BAD_RATIOS.format(ratios=ratios)) from None
    if len(shares) != 3:
        raise DataError(BAD_RATIOS.format(ratios=list(ratios)))
    for name, share in zip(SPLITS, shares):
        if not share > 0:
            raise DataError(RATIO_NOT_POSITIVE.format(split=name, value=share))
    if abs(sum(shares) - 1.0) > 1e-9:
        raise DataError(RATIOS_SUM.format(ratios=shares, total=sum(shares)))
    # The small epsilon keeps 0.7 * 10 = 7.000000000000001 and 0.85 * 20 = 16.999999999999996 exact.
    b1 = math.floor(t * shares[0] + 1e-9)
    b2 = math.floor(t * (shares[0] + shares[1]) + 1e-9)
    out = {"train": range(0, b1), "valid": range(b1, b2), "test": range(b2, t)}
    for name, r in out.items():
        if len(r) == 0:
            detail = f": {t} bars are too few for ratios {shares}"
            raise DataError(EMPTY_SPLIT.format(split=name, detail=detail))
    return Splits(**out)


def _show(value) -> str:
    return f"{value[0]}..{value[1]}"
