"""What the session pages show, shaped from what the selectors return: the report's tables and
charts, the comparison's rows, the resource samples the live charts start from. Plain functions of
plain data, so the views stay thin and these are tested without a request."""
from sessions.charts import line_chart
from sessions.selectors import COMPARE_MAX, session_report

COMPARE_IDS_REQUIRED = "ids: give the sessions to compare, e.g. ?ids=1,2,3"
COMPARE_IDS_INVALID = "ids: {value!r} is not a session id"
COMPARE_IDS_TOO_MANY = "ids: at most {max} sessions at a time"
# The test-split numbers of the sessions' reports, beside their last epoch's.
COMPARE_REPORT_METRICS = ("total_return", "sharpe", "max_drawdown")


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


def metric_rows(report: dict) -> list[tuple[str, object, object]]:
    """(name, strategy, benchmark) for every metric either side reports, the strategy's order first."""
    ours, theirs = report.get("metrics") or {}, report.get("benchmark_metrics") or {}
    names = list(ours) + [name for name in theirs if name not in ours]
    return [(name, ours.get(name), theirs.get(name)) for name in names]


def columns(rows) -> list[str]:
    """The keys of a page of trade (or order) dicts, in first-seen order: the engine's trades differ by task."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


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
    return f"Benchmark ({report['benchmark']})" if report.get("benchmark") else "Benchmark"


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
