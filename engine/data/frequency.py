"""Bar frequency from the dates, and how many bars make a year.

Frequencies: "minute", "5min", "15min", "30min", "hourly", "4hourly", "daily", "weekly", "monthly".
"""
from __future__ import annotations

import numpy as np

from engine.data.errors import DataError

# Nominal spacing of each frequency, in seconds.
SPACING: dict[str, float] = {
    "minute": 60.0,
    "5min": 300.0,
    "15min": 900.0,
    "30min": 1800.0,
    "hourly": 3600.0,
    "4hourly": 14_400.0,
    "daily": 86_400.0,
    "weekly": 7 * 86_400.0,
    "monthly": 365.25 / 12 * 86_400.0,
}
FREQUENCIES: tuple[str, ...] = tuple(SPACING)
ASSET_CLASSES = ("equity", "crypto")

# A median spacing within this factor of a nominal spacing is that frequency. 1.75 accepts months of
# 28..31 days and a short series whose median a gap pulls to 1.5 days, yet rejects spacings that are
# another frequency altogether (2 minutes, 3 days); the nearest frequency wins between neighbours.
TOLERANCE = 1.75

TOO_FEW_DATES = "need at least 2 dates to detect the bar frequency, got {n}"
IRREGULAR = "median spacing of the dates is {spacing}, which matches none of the frequencies {choices}"
UNKNOWN_FREQUENCY = "unknown frequency {frequency!r}; expected one of {choices}"
UNKNOWN_ASSET_CLASS = "unknown asset_class {asset_class!r}; expected one of {choices}"

# Trading time per year. Equity: 252 sessions of 6.5 hours (NYSE); crypto: 365 days of 24 hours.
_SESSION_SECONDS = {"equity": 6.5 * 3600.0, "crypto": 24 * 3600.0}
_DAYS_PER_YEAR = {"equity": 252, "crypto": 365}


def detect_frequency(dates) -> str:
    """The frequency whose nominal spacing is nearest (on a log scale) to the median spacing of `dates`.

    The median ignores weekends, holidays and the odd gap. Raises DataError for fewer than 2 dates,
    non-increasing dates, or a median spacing more than TOLERANCE away from every frequency.
    """
    dates = np.asarray(dates, dtype="datetime64[ns]")
    if len(dates) < 2:
        raise DataError(TOO_FEW_DATES.format(n=len(dates)))
    steps = np.diff(dates).astype(np.int64) / 1e9
    spacing = float(np.median(steps))
    if spacing <= 0:
        raise DataError("dates must be strictly increasing to detect the bar frequency")
    names = np.array(FREQUENCIES)
    distance = np.abs(np.log(np.array([SPACING[n] for n in FREQUENCIES]) / spacing))
    best = int(np.argmin(distance))
    if distance[best] > np.log(TOLERANCE):
        raise DataError(IRREGULAR.format(spacing=_human(spacing), choices=", ".join(FREQUENCIES)))
    return str(names[best])


def periods_per_year(frequency: str, asset_class: str = "equity") -> float:
    """Bars per year for `frequency` in `asset_class` ("equity" or "crypto").

    Equity trades 252 days of 6.5 hours (daily 252, hourly 1638, minute 98280, 4hourly 409.5), crypto
    24/7 (daily 365, hourly 8760, minute 525600). Weekly is 52 and monthly 12 for both.
    """
    if asset_class not in ASSET_CLASSES:
        raise ValueError(UNKNOWN_ASSET_CLASS.format(asset_class=asset_class, choices=", ".join(ASSET_CLASSES)))
    if frequency not in SPACING:
        raise ValueError(UNKNOWN_FREQUENCY.format(frequency=frequency, choices=", ".join(FREQUENCIES)))
    if frequency == "weekly":
        return 52.0
    if frequency == "monthly":
        return 12.0
    if frequency == "daily":
        return float(_DAYS_PER_YEAR[asset_class])
    return _DAYS_PER_YEAR[asset_class] * _SESSION_SECONDS[asset_class] / SPACING[frequency]


def detect_asset_class(dates, frequency: str) -> str:
    """"crypto" when at least 10% of the bars fall on a Saturday or Sunday, else "equity".

    A 24/7 market has 2/7 (29%) of its bars on weekends, an exchange-traded one almost none, so 10% sits
    well between them. Weekly and monthly bars are dated by convention (a Sunday week label says nothing
    about trading hours), so they are "equity"; their periods_per_year is the same for both classes.
    """
    if frequency in ("weekly", "monthly"):
        return "equity"
    dates = np.asarray(dates, dtype="datetime64[ns]")
    if len(dates) == 0:
        return "equity"
    # 1970-01-01 was a Thursday: day index 2 and 3 from it (mod 7) are Saturday and Sunday.
    weekday = (dates.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 0 = Monday
    weekend_share = float(np.mean(weekday >= 5))
    return "crypto" if weekend_share >= 0.10 else "equity"


def _human(seconds: float) -> str:
    for unit, size in (("days", 86_400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} seconds"
