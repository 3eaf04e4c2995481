"""What the risk controller holds an account to: `Limits`, every one optional, and the rules that combine
them (a deployment answers to the tightest of its user's, its strategy's, its own and the system-wide
ceilings; nobody may set a limit looser than a ceiling).

Plain data with no Django in it, so risk.controller's checks stay plain functions over plain data.
Units: money in the account's currency; `*_pct` in percent (5 = 5%); `max_position_fraction` and
`max_gross_exposure` are multiples of the account's equity (0.2 = a fifth of it; 2 = leverage 2).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

BREACH_LEVELS = ("pause", "halt", "flatten")  # least severe first: the order tightest() ranks them by
ALL_WEEKDAYS = frozenset(range(7))  # Monday = 0, as datetime.weekday()
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Each positive limit with the upper bound of its range (inclusive); None: no upper bound.
POSITIVE_FIELDS = {
    "max_order_notional": None, "max_position_fraction": None, "max_position_units": None,
    "max_gross_exposure": None, "daily_loss_money": None, "daily_loss_pct": 100.0,
    "max_drawdown_money": None, "max_drawdown_pct": 100.0, "price_band_pct": None,
}
COUNT_FIELDS = ("max_orders_per_minute", "max_open_orders")
NUMERIC_FIELDS = (*POSITIVE_FIELDS, *COUNT_FIELDS)

NOT_POSITIVE = "{name} must be a finite number > 0{upper}, got {value!r}"
NOT_A_COUNT = "{name} must be a whole number >= 1, got {value!r}"
BAD_SYMBOLS = "allowed_symbols must be a set of non-empty strings, got {value!r}"
BAD_BREACH_LEVEL = "breach_level must be one of {levels}, got {value!r}"
BAD_HOURS = "trading_hours must be a TradingHours or None, got {value!r}"
BAD_TIME = "trading_hours.{name} must be a time HH:MM (00:00 to 24:00), got {value!r}"
EMPTY_WINDOW = "trading_hours: start {start} must be before end {end} (a window within one UTC day)"
BAD_WEEKDAYS = "trading_hours.weekdays must be whole numbers 0 (Monday) to 6 (Sunday), got {value!r}"
UNKNOWN_FIELDS = "unknown limits: {names}"
ABOVE_CEILING = "{value} is above the system-wide ceiling of {ceiling}"
UNSET_UNDER_CEILING = "must be set: the system-wide ceiling is {ceiling}"
SYMBOLS_BEYOND_CEILING = "allows symbols the system-wide ceiling does not: {symbols}"
HOURS_BEYOND_CEILING = "{hours} reaches outside the system-wide trading hours {ceiling}"
MILDER_BREACH_LEVEL = "{value!r} is milder than the system-wide breach level {ceiling!r}"


def _minute_of(name: str, text: object) -> int:
    """Minutes after midnight of "HH:MM" ("24:00" is the end of the day)."""
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 2 or not all(len(p) == 2 and p.isdigit() for p in parts):
        raise ValueError(BAD_TIME.format(name=name, value=text))
    hours, minutes = int(parts[0]), int(parts[1])
    if minutes > 59 or hours * 60 + minutes > 24 * 60:
        raise ValueError(BAD_TIME.format(name=name, value=text))
    return hours * 60 + minutes


@dataclass(frozen=True)
class TradingHours:
    """When orders may be sent: from `start` up to (not including) `end`, "HH:MM" in UTC, on `weekdays`.

    A window lies within one UTC day (a session across midnight UTC cannot be written as one window).
    No weekdays: never open, which is what two windows that do not overlap leave (tightest()).
    """

    start: str = "00:00"
    end: str = "24:00"
    weekdays: frozenset[int] = ALL_WEEKDAYS
    start_minute: int = field(init=False, repr=False, compare=False)
    end_minute: int = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        # Minutes are kept beside the text: the per-order check compares integers, not strings.
        object.__setattr__(self, "start_minute", _minute_of("start", self.start))
        object.__setattr__(self, "end_minute", _minute_of("end", self.end))
        if self.start_minute >= self.end_minute:
            raise ValueError(EMPTY_WINDOW.format(start=self.start, end=self.end))
        weekdays = self.weekdays
        if isinstance(weekdays, str | bytes) or not all(type(d) is int and 0 <= d <= 6 for d in weekdays):
            raise ValueError(BAD_WEEKDAYS.format(value=weekdays))
        object.__setattr__(self, "weekdays", frozenset(weekdays))

    def is_open(self, weekday: int, minute: int) -> bool:
        """Whether minute `minute` after midnight UTC of a day `weekday` (Monday = 0) is in the window."""
        return weekday in self.weekdays and self.start_minute <= minute < self.end_minute

    def contains(self, other: TradingHours) -> bool:
        """Whether every moment `other` is open, this is open too."""
        if not other.weekdays:
            return True
        return (other.weekdays <= self.weekdays and self.start_minute <= other.start_minute
                and other.end_minute <= self.end_minute)

    def __str__(self) -> str:
        days = ",".join(WEEKDAY_NAMES[d] for d in sorted(self.weekdays)) or "no day"
        return f"{self.start}-{self.end} UTC {days}"

    def as_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "weekdays": sorted(self.weekdays)}


NEVER_OPEN = TradingHours("00:00", "24:00", frozenset())


def _check_positive(name: str, value: object, upper: float | None) -> None:
    ok = (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
          and (upper is None or value <= upper))
    if not ok:
        raise ValueError(NOT_POSITIVE.format(name=name, value=value, upper=f" and <= {upper:g}" if upper else ""))


@dataclass(frozen=True)
class Limits:
    """The limits one account is held to; None: that limit is not set.

    max_order_notional: an order's quantity times its expected price, in money.
    max_position_fraction: a position's value as a multiple of the account's equity (absolute, so it
        holds short positions too).
    max_position_units: a position's absolute size, in the asset's units (the same for every asset).
    max_gross_exposure: the sum of all positions' absolute values as a multiple of equity (leverage).
    daily_loss_money / daily_loss_pct: how far equity may fall below where the day started.
    max_drawdown_money / max_drawdown_pct: how far equity may fall below its peak.
    max_orders_per_minute: orders sent in any 60 seconds. max_open_orders: orders open at once.
    price_band_pct: how far an order's expected price may stray from the last trade (fat fingers).
    allowed_symbols: the only symbols that may be traded. trading_hours: when orders may be sent.
    breach_level: the kill level a breached daily-loss or drawdown limit trips.
    """

    max_order_notional: float | None = None
    max_position_fraction: float | None = None
    max_position_units: float | None = None
    max_gross_exposure: float | None = None
    daily_loss_money: float | None = None
    daily_loss_pct: float | None = None
    max_drawdown_money: float | None = None
    max_drawdown_pct: float | None = None
    max_orders_per_minute: int | None = None
    max_open_orders: int | None = None
    price_band_pct: float | None = None
    allowed_symbols: frozenset[str] | None = None
    trading_hours: TradingHours | None = None
    breach_level: str = "halt"

    def __post_init__(self):
        for name, upper in POSITIVE_FIELDS.items():
            if getattr(self, name) is not None:
                _check_positive(name, getattr(self, name), upper)
        for name in COUNT_FIELDS:
            value = getattr(self, name)
            if value is not None and not (type(value) is int and value >= 1):
                raise ValueError(NOT_A_COUNT.format(name=name, value=value))
        self._check_symbols()
        if self.trading_hours is not None and not isinstance(self.trading_hours, TradingHours):
            raise ValueError(BAD_HOURS.format(value=self.trading_hours))
        if self.breach_level not in BREACH_LEVELS:
            raise ValueError(BAD_BREACH_LEVEL.format(levels=BREACH_LEVELS, value=self.breach_level))

    def _check_symbols(self) -> None:
        symbols = self.allowed_symbols
        if symbols is None:
            return
        # A bare string would pass as a set of its letters.
        if isinstance(symbols, str | bytes) or not all(isinstance(s, str) and s for s in symbols):
            raise ValueError(BAD_SYMBOLS.format(value=symbols))
        object.__setattr__(self, "allowed_symbols", frozenset(symbols))

    def as_dict(self) -> dict:
        """JSON-ready: sets as sorted lists, trading hours as a dict; from_dict() reads it back equal."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.allowed_symbols is not None:
            data["allowed_symbols"] = sorted(self.allowed_symbols)
        if self.trading_hours is not None:
            data["trading_hours"] = self.trading_hours.as_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Limits:
        """The limits as_dict() wrote (a missing key: not set). An unknown key is a ValueError: a
        misspelt limit left out quietly would be a limit nobody enforces."""
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(UNKNOWN_FIELDS.format(names=", ".join(unknown)))
        values = dict(data)
        if values.get("allowed_symbols") is not None:
            values["allowed_symbols"] = frozenset(values["allowed_symbols"])
        hours = values.get("trading_hours")
        if isinstance(hours, dict):
            values["trading_hours"] = TradingHours(hours.get("start", "00:00"), hours.get("end", "24:00"),
                                                   frozenset(hours.get("weekdays", ALL_WEEKDAYS)))
        return cls(**values)


NO_LIMITS = Limits()


def _smallest(values: list) -> float | int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _common_symbols(sets: list) -> frozenset[str] | None:
    present = [s for s in sets if s is not None]
    return frozenset.intersection(*present) if present else None


def _common_hours(windows: list) -> TradingHours | None:
    present = [w for w in windows if w is not None]
    if not present:
        return None
    start = max(present, key=lambda w: w.start_minute).start
    end = min(present, key=lambda w: w.end_minute).end
    weekdays = frozenset.intersection(*(w.weekdays for w in present))
    if _minute_of("start", start) >= _minute_of("end", end) or not weekdays:
        return NEVER_OPEN
    return TradingHours(start, end, weekdays)


def tightest(*limits: Limits) -> Limits:
    """The limits that hold where all of `limits` apply: the smallest of each number, the symbols every
    one allows, the hours every one is open (NEVER_OPEN if none), the most severe breach level.
    No argument: NO_LIMITS."""
    if not limits:
        return NO_LIMITS
    values = {name: _smallest([getattr(lim, name) for lim in limits]) for name in NUMERIC_FIELDS}
    return Limits(
        **values,
        allowed_symbols=_common_symbols([lim.allowed_symbols for lim in limits]),
        trading_hours=_common_hours([lim.trading_hours for lim in limits]),
        breach_level=max((lim.breach_level for lim in limits), key=BREACH_LEVELS.index),
    )


def _numeric_excess(value, ceiling) -> str:
    if value is None:
        return UNSET_UNDER_CEILING.format(ceiling=ceiling)
    return ABOVE_CEILING.format(value=value, ceiling=ceiling) if value > ceiling else ""


def _symbol_excess(symbols: frozenset[str] | None, ceiling: frozenset[str]) -> str:
    if symbols is None:
        return UNSET_UNDER_CEILING.format(ceiling=", ".join(sorted(ceiling)) or "no symbol")
    extra = symbols - ceiling
    return SYMBOLS_BEYOND_CEILING.format(symbols=", ".join(sorted(extra))) if extra else ""


def _hours_excess(hours: TradingHours | None, ceiling: TradingHours) -> str:
    if hours is None:
        return UNSET_UNDER_CEILING.format(ceiling=ceiling)
    return "" if ceiling.contains(hours) else HOURS_BEYOND_CEILING.format(hours=hours, ceiling=ceiling)


def within_ceiling(limits: Limits, ceiling: Limits) -> list[tuple[str, str]]:
    """(field, message) for every limit of `limits` looser than the system-wide `ceiling`: above it, or
    not set where the ceiling is. Empty: `limits` stays within the ceiling."""
    problems = []
    for name in NUMERIC_FIELDS:
        if getattr(ceiling, name) is not None:
            problems.append((name, _numeric_excess(getattr(limits, name), getattr(ceiling, name))))
    if ceiling.allowed_symbols is not None:
        problems.append(("allowed_symbols", _symbol_excess(limits.allowed_symbols, ceiling.allowed_symbols)))
    if ceiling.trading_hours is not None:
        problems.append(("trading_hours", _hours_excess(limits.trading_hours, ceiling.trading_hours)))
    if BREACH_LEVELS.index(limits.breach_level) < BREACH_LEVELS.index(ceiling.breach_level):
        problems.append(("breach_level", MILDER_BREACH_LEVEL.format(value=limits.breach_level,
                                                                    ceiling=ceiling.breach_level)))
    return [(name, message) for name, message in problems if message]
