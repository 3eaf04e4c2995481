"""The session pages: list, detail (progress, actions, metrics, resources, log) and the backtest report.
Thin: parse the request, call a selector or a service, render.

Someone else's session is a 404 (session_get's NotFound). Actions are POST-only; an action the
session's status does not allow (IllegalTransition) comes back as a message, not an error page.
"""
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from sessions import selectors, services
from sessions.charts import line_chart
from sessions.models import SessionStatus
from sessions.services import IllegalTransition
from trademaster_web.errors import Conflict, NotFound

PER_PAGE = 50
METRICS_PER_PAGE = 100
RESOURCE_ROWS = 20
LOG_LINES = 50
# A log line is short; reading only the end of the file keeps a page view cheap on a long run.
LOG_TAIL_BYTES = 64 * 1024
TRADES_PER_PAGE = 50

PAUSE_REQUESTED = "Pause requested for session #{pk}: it pauses at the end of the current epoch."
RESUMED = "Session #{pk} is queued again; it continues from its checkpoint."
PAUSE_WITHDRAWN = "The pause request of session #{pk} is withdrawn; it keeps running."
STOP_REQUESTED = "Stop requested for session #{pk}: it stops at the end of the current epoch."
STOPPED = "Session #{pk} is cancelled."
BACKTEST_SUBMITTED = "Backtest session #{pk} submitted."

# Refusals a person can act on (a move the status does not allow, the quota of active sessions, a
# backtest without a checkpoint): shown as a message on the page.
_REFUSED = (IllegalTransition, Conflict, DjangoValidationError)


def _get_or_404(request, pk: int, *, summary: bool = False):
    try:
        return selectors.session_get(user=request.user, pk=pk, summary=summary)
    except NotFound as error:
        raise Http404(str(error)) from None


def _message(error: Exception) -> str:
    if isinstance(error, DjangoValidationError):
        return " ".join(error.messages)
    return str(error)


@login_required
def session_list_view(request):
    status = request.GET.get("status") or None
    if status not in SessionStatus.values:
        status = None
    sessions = selectors.session_summaries(user=request.user, status=status)
    page = Paginator(sessions, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "sessions/list.html", {
        "page": page,
        "status": status,
        "statuses": SessionStatus.choices,
        "extra": f"status={status}&" if status else "",
    })


@login_required
def session_detail_view(request, pk: int):
    session = _get_or_404(request, pk, summary=True)
    usage = list(session.resource_usage.order_by("-recorded_at")[:RESOURCE_ROWS])
    if "after" in request.GET:
        latest = _latest_metrics_cursor(session)
        after = _non_negative_int(request.GET["after"], default=latest)
        metrics = selectors.metric_page(session=session, after=after, limit=METRICS_PER_PAGE)
    else:
        # The page opens on the latest epochs: the page and its cursor in one query.
        metrics, latest = selectors.metric_last_page(session=session, limit=METRICS_PER_PAGE)
        after = latest
    return render(request, "sessions/detail.html", {
        "session": session,
        "metrics": metrics,
        "after": after,
        "latest": latest,
        "next_after": metrics[-1].pk if len(metrics) == METRICS_PER_PAGE else None,
        "usage": usage,
        # The live charts start from these samples: the stream sends only new ones.
        "usage_history": [_sample(row) for row in reversed(usage)],
        "log_tail": log_tail(session.log_path, lines=LOG_LINES),
        "has_report": session.has_report,
    })


def _latest_metrics_cursor(session) -> int:
    """The `after` cursor of the last page, so the page opens on the latest epochs; metric_page then
    pages forward from any cursor."""
    before_last_page = (
        session.metrics.order_by("-pk").values_list("pk", flat=True)[METRICS_PER_PAGE:METRICS_PER_PAGE + 1]
    )
    return next(iter(before_last_page), 0)


def _act(request, pk: int, service):
    """Call `service` (session_pause, _resume or _stop) on the session; None when it refused, with
    the reason as a message."""
    session = _get_or_404(request, pk)
    try:
        return service(session=session, user=request.user)
    except _REFUSED as error:
        messages.error(request, _message(error))
        return None


@login_required
@require_POST
def session_pause_view(request, pk: int):
    if _act(request, pk, services.session_pause):
        messages.success(request, PAUSE_REQUESTED.format(pk=pk))
    return redirect("sessions:detail", pk=pk)


@login_required
@require_POST
def session_resume_view(request, pk: int):
    session = _act(request, pk, services.session_resume)
    if session:
        # A running session whose pause was not reached yet just keeps running.
        done = PAUSE_WITHDRAWN if session.status == SessionStatus.RUNNING else RESUMED
        messages.success(request, done.format(pk=pk))
    return redirect("sessions:detail", pk=pk)


@login_required
@require_POST
def session_stop_view(request, pk: int):
    session = _act(request, pk, services.session_stop)
    if session:
        # A running session only takes note and stops at the end of its epoch; the others stop now.
        messages.success(request, (STOPPED if session.is_final else STOP_REQUESTED).format(pk=pk))
    return redirect("sessions:detail", pk=pk)


@login_required
@require_POST
def session_backtest_view(request, pk: int):
    """Backtest the checkpoint of a completed training session on its strategy's test split."""
    source = _get_or_404(request, pk)
    try:
        backtest = services.session_submit(
            strategy=source.strategy, user=request.user, session_type="backtest", source=source
        )
    except _REFUSED as error:
        messages.error(request, _message(error))
        return redirect("sessions:detail", pk=source.pk)
    messages.success(request, BACKTEST_SUBMITTED.format(pk=backtest.pk))
    return redirect("sessions:detail", pk=backtest.pk)


@login_required
def session_report_view(request, pk: int):
    session = _get_or_404(request, pk)
    report = selectors.session_report(session=session) or {}
    trades = report.get("trades") or report.get("orders") or []
    trades_page = Paginator(trades, TRADES_PER_PAGE).get_page(request.GET.get("page"))
    trade_columns = columns(trades_page.object_list)
    return render(request, "sessions/report.html", {
        "session": session,
        "report": report,
        "metric_rows": metric_rows(report),
        "trades_page": trades_page,
        "trade_columns": trade_columns,
        "trade_rows": [[trade.get(c) for c in trade_columns] for trade in trades_page.object_list],
        "equity_chart": _equity_chart(report),
        "drawdown_chart": _drawdown_chart(report),
        "report_curves": report_curves(report),
    })


@login_required
def session_compare_view(request):
    """/sessions/compare/?ids=1,2,3 (or ?ids=1&ids=2, as the list's checkboxes send it)."""
    try:
        ids = compare_ids(request.GET.getlist("ids"))
    except ValueError as error:
        return HttpResponseBadRequest(str(error))
    try:
        sessions = selectors.session_compare(user=request.user, ids=ids)
    except NotFound as error:
        raise Http404(str(error)) from None
    series = selectors.metric_series(sessions=sessions)
    return render(request, "sessions/compare.html", {
        "rows": [_compare_row(session, series[session.pk]) for session in sessions],
        "curve_names": selectors.COMPARE_METRICS,
        "report_names": COMPARE_REPORT_METRICS,
        "chart_data": {
            "sessions": [{"id": s.pk, "label": f"#{s.pk} {s.strategy.name}"} for s in sessions],
            "series": {name: {str(s.pk): series[s.pk][name] for s in sessions} for name in selectors.COMPARE_METRICS},
        },
    })


# ------------------------------------------------------------------------------- shaping for display

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
    if len(set(ids)) > selectors.COMPARE_MAX:
        raise ValueError(COMPARE_IDS_TOO_MANY.format(max=selectors.COMPARE_MAX))
    return ids


def _compare_row(session, series: dict[str, list]) -> dict:
    report = selectors.session_report(session=session) or {}
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


def _sample(row) -> dict:
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


def _equity_chart(report: dict):
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


def _drawdown_chart(report: dict):
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


def log_tail(path: str, *, lines: int) -> list[str] | None:
    """The last `lines` lines of the log at `path`; None when there is no such file (yet)."""
    if not path:
        return None
    file = Path(path)
    try:
        with file.open("rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - LOG_TAIL_BYTES))
            text = log.read().decode("utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    found = text.splitlines()
    if size > LOG_TAIL_BYTES:
        found = found[1:]  # the seek may have cut the first one in the middle
    return found[-lines:]


def _non_negative_int(text: str | None, *, default: int = 0) -> int:
    try:
        return max(0, int(text)) if text else default
    except ValueError:
        return default
