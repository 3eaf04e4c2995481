"""How the risk pages print limits, their changes and kill switches: each value as the record holds it
(a number with every digit it has, never rounded), a dash for a limit not set."""
from __future__ import annotations

from risk.limits import ALL_WEEKDAYS, Limits, TradingHours

NOT_SET = "—"
# Each limit's label and unit, in the order the pages list them (risk.limits.Limits' fields).
LABELS = {
    "max_order_notional": ("Order notional", "money"),
    "max_position_fraction": ("Position", "× equity"),
    "max_position_units": ("Position size", "units"),
    "max_gross_exposure": ("Gross exposure", "× equity"),
    "daily_loss_money": ("Daily loss", "money"),
    "daily_loss_pct": ("Daily loss", "%"),
    "max_drawdown_money": ("Drawdown", "money"),
    "max_drawdown_pct": ("Drawdown", "%"),
    "max_orders_per_minute": ("Orders per minute", ""),
    "max_open_orders": ("Open orders", ""),
    "price_band_pct": ("Price band", "% from the last trade"),
    "allowed_symbols": ("Allowed symbols", ""),
    "trading_hours": ("Trading hours", "UTC"),
    "breach_level": ("On a loss-limit breach", "kill level"),
}


def label(name: str) -> str:
    text, unit = LABELS[name]
    return f"{text} ({unit})" if unit else text


def number_text(value: float | int) -> str:
    """Every digit the number has, grouped by thousands: 50000.0 -> "50,000", 0.25 -> "0.25"."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        value = int(value)
    return f"{value:,}"


def value_text(name: str, value) -> str:
    """One limit's value (as Limits.as_dict() holds it) as a page prints it."""
    if value is None:
        return NOT_SET
    if name == "allowed_symbols":
        return ", ".join(value) if value else "none"
    if name == "trading_hours":
        weekdays = frozenset(value.get("weekdays", ALL_WEEKDAYS))
        return str(TradingHours(value.get("start", "00:00"), value.get("end", "24:00"), weekdays))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number_text(value)
    return str(value)


def limits_rows(columns: list[Limits | None]) -> list[dict]:
    """One row per limit: its label and its value in each of `columns` (None: a scope with no limits row,
    every cell a dash)."""
    values = [None if limits is None else limits.as_dict() for limits in columns]
    return [{"name": name, "label": label(name),
             "cells": [NOT_SET if v is None else value_text(name, v.get(name)) for v in values]}
            for name in LABELS]


def change_rows(changes) -> list[dict]:
    """Each LimitChange with what it changed: [(label, before, after)] for every limit that moved."""
    rows = []
    for change in changes:
        names = [name for name in LABELS if change.before.get(name) != change.after.get(name)]
        rows.append({
            "change": change,
            "by": change.changed_by.get_username() if change.changed_by_id else "—",
            "moved": [(label(name), value_text(name, change.before.get(name)), value_text(name, change.after.get(name)))
                      for name in names],
        })
    return rows


def switch_target(switch) -> str:
    """What a kill switch stops, in words."""
    if switch.scope == "global":
        return "every deployment"
    if switch.scope == "user":
        return f"every deployment of {switch.user.get_username()}"
    return f"deployment #{switch.deployment_id}"
