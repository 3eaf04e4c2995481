"""What the session pages show, shaped from what the selectors return: the report's header, tables and
charts, the comparison's rows, the actions a user may take, why a session failed, the resource samples
the live charts start from. Plain functions of plain data, so the views stay thin and these are tested
without a request. How each metric is named and printed is sessions.report_format's table."""
from dataclasses import dataclass

from common.access import may_act, sees_everything
from sessions.charts import line_chart
from sessions.models import SessionStatus, StrategySession
from sessions.reasons import without_paths
from sessions.report_format import (
    BPS,
    COUNT,
    MONEY,
    NUMBER,
    REPORT_METRICS,
    decimals_of,
    metric_heading,
    metric_label,
    number,
)
from sessions.selectors import COMPARE_MAX, session_report

COMPARE_IDS_REQUIRED = "ids: give the sessions to compare, e.g. ?ids=1,2,3"
COMPARE_IDS_INVALID = "ids: {value!r} is not a session id"
COMPARE_IDS_TOO_MANY = "ids: at most {max} sessions at a time"
# The test-split numbers of the sessions' reports, beside their last epoch's.
COMPARE_REPORT_METRICS = ("total_return", "sharpe", "max_drawdown")
# The test-split numbers a list of sessions and the dashboard show of each result: what an operator
# compares first; the report page has all of them.
KEY_METRICS = ("total_return", "sharpe", "max_drawdown")
# A list of sessions has room for two.
LIST_METRICS = ("total_return", "sharpe")

# The benchmark agents in words (engine.tasks names them; engine.backtest.backtester runs them).
BENCHMARKS = {
    "buy_and_hold": "Buy and hold (the market bought at the first bar and held)",
    "twap": "TWAP (each order in equal slices over its horizon)",
    "crp": "Constant rebalanced portfolio (equal weights, rebalanced every bar)",
    "random": "Random policy",
}
SPLITS = {"train": "Training", "valid": "Validation", "test": "Test"}
# The sentence a failed session shows without its error's text.

PRICE = "price"
QUANTITY = "quantity"
TEXT = "text"
# The engine's trade and order dicts (engine.backtest.backtester): column heading and kind. Prices print
# with the instrument's precision and quantities with the shares' (both read from the report's fills).
TRADE_COLUMNS = {
    "date": ("Date", TEXT),
    "tic": ("Asset", TEXT),
    "side": ("Side", TEXT),
    "shares": ("Shares", QUANTITY),
    "price": ("Price", PRICE),
    "fee": ("Fee", MONEY),
    "value": ("Value", MONEY),
    "bar": ("Bar", COUNT),
    "arrival_price": ("Arrival price", PRICE),
    "average_price": ("Average fill price", PRICE),
    "executed": ("Executed (shares)", QUANTITY),
    "remaining": ("Remaining (shares)", QUANTITY),
    "shortfall": ("Shortfall", MONEY),
    "shortfall_bps": ("Shortfall (bps)", BPS),
    "reward": ("Reward", NUMBER),
}
PRICE_DECIMALS = (2, 6)
QUANTITY_DECIMALS = (0, 4)


def compare_ids(values: list[str]) -> list[int]:
    """The session ids of ?ids=1,2,3 and/or ?ids=1&ids=2, in order; ValueError on anything else."""
    parts = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not parts:
        raise ValueError(COMPARE_IDS_REQUIRED)
    ids = []
    for part in parts:
        if not part.isdigit():
            raise ValueError(COMPARE_IDS_INVALID.format(value=part))
        ids.append(int(part))
    if len(set(ids)) > COMPARE_MAX:
        raise ValueError(COMPARE_IDS_TOO_MANY.format(max=COMPARE_MAX))
    return ids


def compare_row(session, series: dict[str, list]) -> dict:
    report = session_report(session=session) or {}
    metrics = report.get("metrics") or {}
    return {
        "session": session,
        "epochs": max((points[-1][0] for points in series.values() if points), default=None),
        # The last epoch's value: where each run ended, not its best.
        "last": [(name, points[-1][1] if points else None) for name, points in series.items()],
        "report": [(name, metrics.get(name)) for name in COMPARE_REPORT_METRICS],
    }


def headings(names) -> list[tuple[str, str]]:
    """(name, column heading) of each metric of `names`."""
    return [(name, metric_heading(name)) for name in names]


# The report -----------------------------------------------------------------------------------------


def benchmark_words(name: str | None) -> str:
    if not name:
        return "—"
    return BENCHMARKS.get(name, name.replace("_", " ").capitalize())


def report_period(report: dict) -> str:
    """The dates the report covers, "2024-01-01 to 2024-03-28 (61 bars)", read from its curve (or its
    orders); "" when it has neither."""
    curve = report.get("equity_curve") or []
    if len(curve) >= 2:
        return f"{curve[0].get('date')} to {curve[-1].get('date')} ({number(len(curve) - 1, COUNT)} bars)"
    orders = report.get("orders") or []
    if orders:
        return f"{orders[0].get('date')} to {orders[-1].get('date')} ({number(len(orders), COUNT)} orders)"
    return ""


def split_words(report: dict) -> str:
    split = report.get("split")
    return SPLITS.get(split, split or "—")


def report_curves(report: dict) -> dict | None:
    """The equity and drawdown curves as columns for the report page's charts (json_script)."""
    equity, drawdown = report.get("equity_curve") or [], report.get("drawdown") or []
    if not equity and not drawdown:
        return None
    return {
        "benchmark_label": _benchmark_label(report),
        "equity": {"dates": [str(p.get("date")) for p in equity], "strategy": [p.get("value") for p in equity],
                   "benchmark": [p.get("benchmark") for p in equity]},
        "drawdown": {"dates": [str(p.get("date")) for p in drawdown], "strategy": [p.get("strategy") for p in drawdown],
                     "benchmark": [p.get("benchmark") for p in drawdown]},
    }


def resource_sample(row) -> dict:
    return {
        "id": row.pk, "cpu_percent": row.cpu_percent, "memory_mb": row.memory_mb, "gpu_percent": row.gpu_percent,
        "gpu_memory_mb": row.gpu_memory_mb, "recorded_at": row.recorded_at.isoformat(),
    }


@dataclass(frozen=True)
class MetricRow:
    name: str
    label: str
    ours: object
    theirs: object


def metric_rows(report: dict) -> list[MetricRow]:
    """A row for every metric either side reports, in words, in the table's order (returns, risk,
    activity); names it does not know after them. Not the report's own order: PostgreSQL's jsonb
    does not keep it."""
    ours, theirs = report.get("metrics") or {}, report.get("benchmark_metrics") or {}
    names = sorted({*ours, *theirs}, key=_in_table_order(REPORT_METRICS))
    return [MetricRow(name, metric_label(name), ours.get(name), theirs.get(name)) for name in names]


def _in_table_order(table: dict):
    order = {name: position for position, name in enumerate(table)}
    return lambda name: (order.get(name, len(order)), name)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool


def trade_table(trades: list[dict], shown: list[dict]) -> tuple[list[Column], list[list]]:
    """The columns of a page (`shown`) of the report's trades (or orders), in TRADE_COLUMNS' order,
    and its rows as printed: prices with the decimals the instrument's fills carry (read from all of
    `trades`, so that every page prints them alike), quantities with the shares', money with two,
    counts with none."""
    keys = sorted({key for row in shown for key in row}, key=_in_table_order(TRADE_COLUMNS))
    kinds = {key: TRADE_COLUMNS.get(key, (key, NUMBER))[1] for key in keys}
    decimals = {}
    for kind, (least, most) in ((PRICE, PRICE_DECIMALS), (QUANTITY, QUANTITY_DECIMALS)):
        values = [trade.get(key) for trade in trades for key in keys if kinds[key] == kind]
        decimals[kind] = decimals_of(values, least=least, most=most)
    columns = [Column(key, TRADE_COLUMNS.get(key, (key, NUMBER))[0], kinds[key] != TEXT) for key in keys]
    rows = [[_cell(row.get(key), kinds[key], decimals) for key in keys] for row in shown]
    return columns, rows


def _cell(value, kind: str, decimals: dict[str, int]):
    if kind == TEXT:
        return "—" if value is None else value
    return number(value, kind, decimals=decimals.get(kind))


def equity_chart(report: dict):
    curve = report.get("equity_curve") or []
    if not curve:
        return None
    return line_chart(
        {"strategy": ("Strategy", [p.get("value") for p in curve]),
         "benchmark": (_benchmark_label(report), [p.get("benchmark") for p in curve])},
        labels=[p.get("date") for p in curve],
        y_format=",.0f",
    )


def _benchmark_label(report: dict) -> str:
    name = report.get("benchmark")
    return f"Benchmark: {BENCHMARKS.get(name, name).split(' (')[0]}" if name else "Benchmark"


def drawdown_chart(report: dict):
    curve = report.get("drawdown") or []
    if not curve:
        return None
    return line_chart(
        {"strategy": ("Strategy", [p.get("strategy") for p in curve]),
         "benchmark": (_benchmark_label(report), [p.get("benchmark") for p in curve])},
        labels=[p.get("date") for p in curve],
        height=140,
        y_format=".1%",
    )


def key_results(summary: dict | None, names=KEY_METRICS) -> list[tuple[str, object, object]]:
    """(metric name, strategy's value, benchmark's value) of `names` in a report summary
    (StrategySession.report_summary); None values (no report, NaN) print as dashes."""
    summary = summary or {}
    ours, theirs = summary.get("metrics") or {}, summary.get("benchmark_metrics") or {}
    return [(name, ours.get(name), theirs.get(name)) for name in names]


# The session page -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """A button of the session page: a POST to sessions:<name>."""

    name: str
    label: str
    css: str = ""


PAUSE = Action("pause", "Pause")
RESUME = Action("resume", "Resume", "primary")
STOP = Action("stop", "Stop", "danger")
BACKTEST = Action("backtest", "Backtest")


def session_actions(session: StrategySession, *, user) -> list[Action]:
    """The actions `user` may take on `session` now: none on someone else's (staff see it, and act
    only on their own: common.access), and of the owner's those its status and requests allow. A
    stop requested is final: neither Pause nor Stop again while the worker winds down."""
    if not may_act(user=user, owner_id=session.strategy.owner_id):
        return []
    status = session.status
    training = session.session_type == StrategySession.SessionType.TRAINING
    if status == SessionStatus.COMPLETED:
        return [BACKTEST] if training else []
    if status == SessionStatus.FAILED and training:
        return [RESUME]  # from its last good checkpoint, as a new attempt
    if session.is_final or session.cancel_requested:
        return []
    actions = []
    if status == SessionStatus.RUNNING and not session.pause_requested:
        actions.append(PAUSE)
    if status == SessionStatus.PAUSED or (status == SessionStatus.RUNNING and session.pause_requested):
        actions.append(RESUME)
    return [*actions, STOP]


def shows_traceback(user) -> bool:
    """Staff (and superusers) read a session's whole error: support reads tracebacks; users do not."""
    return sees_everything(user)


def log_lines(lines: list[str] | None, *, user) -> list[str] | None:
    """The log tail as `user` may read it: staff as it is, others without server paths."""
    if lines is None or shows_traceback(user):
        return lines
    return [without_paths(line) for line in lines]
