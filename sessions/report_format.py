"""How the pages name and print numbers: the one table of metric names, units and kinds, and the
formats of each kind.

The engine stores fractions (0.12 = 12 %), counts as floats and None for NaN/inf, under names such as
"max_drawdown_duration" or "eval/sharpe"; an operator should read "Max drawdown duration (bars)" and
"1,234", and not have to know which metric is which unit. Every page that shows a metric (the report,
the comparison, the dashboard, the session lists and the session page) reads `metric_info`.
"""
import math
from dataclasses import dataclass

from django.utils.timezone import template_localtime

MISSING = "—"

# The kinds of number, and how each prints (see `number`).
PERCENT = "percent"  # a fraction of 1, printed as a percentage: "12.34%"
RATIO = "ratio"  # a dimensionless ratio (Sharpe, beta): "1.23"
COUNT = "count"  # whole things (bars, orders, epochs): "1,234"
MONEY = "money"  # the account's currency: "1,000,000.00"
BPS = "bps"  # basis points: "12.3"
SECONDS = "seconds"  # "12.3"
RATE = "rate"  # things per second: "1,234"
NUMBER = "number"  # anything else (a loss, a reward): four decimals, or scientific when tiny


@dataclass(frozen=True)
class Metric:
    """label: the name in words, with its unit in brackets when the kind does not print one ("Max
    drawdown duration (bars)"); short: the same for a narrow column heading; kind: how it prints."""

    label: str
    kind: str = NUMBER
    short: str = ""

    @property
    def heading(self) -> str:
        return self.short or self.label


# The backtest report's metrics (engine.metrics.performance_report, the report's activity and alpha,
# the execution report's), and the trainer's per-epoch ones under their namespaces.
REPORT_METRICS: dict[str, Metric] = {
    "total_return": Metric("Total return", PERCENT),
    "annual_return": Metric("Annual return", PERCENT),
    "annual_volatility": Metric("Annual volatility", PERCENT),
    "sharpe": Metric("Sharpe ratio (annualised)", RATIO, "Sharpe ratio"),
    "sortino": Metric("Sortino ratio (annualised)", RATIO, "Sortino ratio"),
    "max_drawdown": Metric("Max drawdown", PERCENT),
    "calmar": Metric("Calmar ratio", RATIO),
    "max_drawdown_duration": Metric("Max drawdown duration (bars)", COUNT, "Max DD duration (bars)"),
    "win_rate": Metric("Win rate (bars with a gain)", PERCENT, "Win rate"),
    "n_periods": Metric("Bars in the period", COUNT, "Bars"),
    "turnover": Metric("Turnover (mean per bar, of the account)", PERCENT, "Turnover per bar"),
    "turnover_total": Metric("Turnover (total, in account values)", RATIO, "Turnover total"),
    "fees": Metric("Fees paid (account currency)", MONEY, "Fees paid"),
    "alpha": Metric("Alpha (annualised)", PERCENT, "Alpha"),
    "beta": Metric("Beta", RATIO),
    "orders": Metric("Orders", COUNT),
    "shortfall_bps": Metric("Implementation shortfall (mean, bps)", BPS, "Shortfall (bps)"),
    "shortfall_bps_std": Metric("Implementation shortfall (std. dev., bps)", BPS, "Shortfall std (bps)"),
    "worst_shortfall_bps": Metric("Worst implementation shortfall (bps)", BPS, "Worst shortfall (bps)"),
    "reward": Metric("Reward (sum per episode or mean per order)", NUMBER, "Reward"),
    "final_value": Metric("Final account value", MONEY),
}
TRAIN_METRICS: dict[str, Metric] = {
    "loss": Metric("Loss"),
    "policy_loss": Metric("Policy loss"),
    "value_loss": Metric("Value loss"),
    "q_loss": Metric("Q loss"),
    "q_value": Metric("Mean Q value"),
    "entropy": Metric("Policy entropy (nats)", NUMBER, "Entropy"),
    "explained_variance": Metric("Explained variance"),
    "reward": Metric("Reward (mean per step)", NUMBER, "Reward"),
    "episode_return": Metric("Episode return (mean)", NUMBER, "Episode return"),
    "episodes": Metric("Episodes finished", COUNT),
    "update_steps": Metric("Gradient steps", COUNT),
    "epsilon": Metric("Exploration epsilon", RATIO),
    "alpha": Metric("Entropy temperature (alpha)", NUMBER, "Alpha"),
    "alpha_loss": Metric("Temperature loss"),
    "log_growth": Metric("Log growth (mean per step)", NUMBER, "Log growth"),
    "turnover": Metric("Turnover (mean per step)", PERCENT, "Turnover"),
}
TIME_METRICS: dict[str, Metric] = {
    "epoch_seconds": Metric("Epoch time (s)", SECONDS),
    "train_seconds": Metric("Training time (s)", SECONDS),
    "steps_per_s": Metric("Environment steps per second", RATE, "Steps/s"),
    "env_steps": Metric("Environment steps", COUNT),
}
# Namespace -> (words before the metric's label, its table).
NAMESPACES = {
    "eval": ("Validation", REPORT_METRICS),
    "train": ("Training", TRAIN_METRICS),
    "time": ("", TIME_METRICS),
}


def metric_info(name: str) -> Metric:
    """What `name` is called and how it prints: "eval/sharpe" -> "Validation Sharpe ratio
    (annualised)", a ratio. A name the table does not know keeps its own name and prints as a number."""
    namespace, _, base = name.rpartition("/")
    prefix, table = NAMESPACES.get(namespace, ("", REPORT_METRICS if not namespace else {}))
    found = table.get(base)
    if found is None:
        return Metric(name)
    if not prefix:
        return found
    return Metric(f"{prefix} {_lower_first(found.label)}", found.kind,
                  f"{prefix} {_lower_first(found.heading)}" if found.short else "")


def _lower_first(text: str) -> str:
    # "Sharpe" and "Q" are names: keep their capital.
    return text if text.split(" ", 1)[0] in ("Sharpe", "Sortino", "Calmar", "Q") else text[:1].lower() + text[1:]


def metric_label(name: str) -> str:
    return metric_info(name).label


def metric_heading(name: str, prefix: str = "") -> str:
    """The column heading of `name`; with `prefix`, after it ("Test Sharpe ratio")."""
    heading = metric_info(name).heading
    return f"{prefix} {_lower_first(heading)}" if prefix else heading


def metric(value, name: str = ""):
    """`value` printed as the metric `name` prints (metric_info; "12.34%" for a fraction, "1,234" for a
    count, "1.23" for a ratio), "—" for a missing or non-finite value (None in a report). Anything
    that is not a number (a date, a ticker) is returned as it is."""
    return number(value, metric_info(name).kind if name else NUMBER)


def number(value, kind: str = NUMBER, *, decimals: int | None = None):
    """`value` printed as a number of `kind`; `decimals` overrides the kind's (prices, quantities)."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if not math.isfinite(value):
        return MISSING
    if decimals is not None:
        return f"{value:,.{decimals}f}"
    if kind == PERCENT:
        return f"{value:,.2%}"
    if kind in (COUNT, RATE):
        return f"{value:,.0f}"
    if kind in (MONEY, RATIO):
        return f"{value:,.2f}"
    if kind in (BPS, SECONDS):
        return f"{value:,.1f}"
    return _plain(value)


def _plain(value: float) -> str:
    """Four decimals; a value too small for them (a loss of 0.000045) in scientific notation, so it
    does not print as 0.0000."""
    if value != 0 and abs(value) < 0.001:
        return f"{value:.3e}"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    return f"{value:.4f}"


def decimals_of(values, *, least: int, most: int) -> int:
    """The fewest decimals (least..most) that print every value in `values` as it is, to float32
    precision (the readers keep prices as TradeMaster's files have them: float32 widened to float64):
    the precision an instrument is quoted in, read from its prices. Values with more digits than
    `most` (a synthetic market's) get enough for six significant digits of the smallest, within
    least..most."""
    finite = [abs(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if not finite:
        return least
    for places in range(least, most + 1):
        if all(abs(v - round(v, places)) <= 1e-7 * max(v, 1e-12) for v in finite):
            return places
    smallest = min((v for v in finite if v > 0), default=1.0)
    digits_before = max(0, math.floor(math.log10(smallest)) + 1)
    return min(most, max(least, 6 - digits_before))


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
