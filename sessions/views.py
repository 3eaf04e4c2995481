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
from django.http import Http404
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


def _get_or_404(request, pk: int):
    try:
        return selectors.session_get(user=request.user, pk=pk)
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
    sessions = selectors.session_list(user=request.user, status=status)
    page = Paginator(sessions, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "sessions/list.html", {
        "page": page,
        "status": status,
        "statuses": SessionStatus.choices,
        "extra": f"status={status}&" if status else "",
    })


@login_required
def session_detail_view(request, pk: int):
    session = _get_or_404(request, pk)
    latest = _latest_metrics_cursor(session)
    after = _non_negative_int(request.GET.get("after"), default=latest)
    metrics = selectors.metric_page(session=session, after=after, limit=METRICS_PER_PAGE)
    return render(request, "sessions/detail.html", {
        "session": session,
        "metrics": metrics,
        "after": after,
        "latest": latest,
        "next_after": metrics[-1].pk if len(metrics) == METRICS_PER_PAGE else None,
        "usage": session.resource_usage.order_by("-recorded_at")[:RESOURCE_ROWS],
        "log_tail": log_tail(session.log_path, lines=LOG_LINES),
        "has_report": selectors.session_report(session=session) is not None,
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
    })


# ------------------------------------------------------------------------------- shaping for display

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
