"""How the pages print numbers from a backtest report: the engine stores fractions (0.12 = 12 %) and
None for NaN/inf, and an operator should not have to know which metric is which unit."""
import math

from django.utils.timezone import template_localtime

# Metrics the engine reports as fractions of 1 (engine.metrics.performance_report, the report's activity
# and alpha); the rest are ratios, counts or currency and print as plain numbers.
FRACTIONS = frozenset({
    "total_return", "annual_return", "annual_volatility", "max_drawdown", "win_rate", "turnover", "alpha",
})
COUNTS = frozenset({"max_drawdown_duration", "n_periods", "orders"})
MISSING = "—"


def metric(value, name: str = ""):
    """`value` printed for the metric `name`: "12.34%" for fractions, "1,234" for counts, "1.2346"
    otherwise, and "—" for a missing or non-finite value (None in a report). Anything that is not a
    number (a date, a ticker) is returned as it is."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if not math.isfinite(value):
        return MISSING
    if name in FRACTIONS:
        return f"{value:.2%}"
    if name in COUNTS:
        return f"{value:,.0f}"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    return f"{value:.4f}"


def tenths(value):
    """`value` to one decimal ("12.3"), "—" when missing: floatformat:1 without its Decimal and locale
    work, which a table of many samples would pay per cell."""
    if value is None or value == "":
        return MISSING
    return f"{value:.1f}"


def clock(value):
    """A datetime's time of day in the current time zone, "14:03:59"; "" for None. Cheaper than the date
    filter's formatter, which a page with a hundred timestamps calls a hundred times."""
    return template_localtime(value).strftime("%H:%M:%S") if value else ""
