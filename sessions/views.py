"""The session pages: list, detail (progress, actions, metrics, resources, log) and the backtest report.
Thin: parse the request, call a selector or a service, render.

The detail page's live part (facts, actions, why it failed, tables, log) is also served alone, as
?part=live: the page fetches it when its stream says the session moved, so that everything on it
agrees with the status badge without a reload, drawn by the same template as the page.

Someone else's session is a 404 (session_get's NotFound). Actions are POST-only; an action the
session's status does not allow (IllegalTransition) comes back as a message, not an error page.
"""
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from common.errors import REFUSALS, NotFound, message_of
from sessions import selectors, services
from sessions.logs import log_tail
from sessions.models import SessionStatus
from sessions.presenters import (
    COMPARE_REPORT_METRICS,
    benchmark_words,
    compare_ids,
    compare_row,
    drawdown_chart,
    equity_chart,
    headings,
    log_lines,
    metric_rows,
    report_curves,
    report_period,
    resource_sample,
    session_actions,
    shows_traceback,
    split_words,
    trade_table,
)
from sessions.reasons import failure_reason

PER_PAGE = 50
METRICS_PER_PAGE = 100
RESOURCE_ROWS = 20
LOG_LINES = 50
TRADES_PER_PAGE = 50

PAUSE_REQUESTED = "Pause requested for session #{pk}: it pauses at the end of the current epoch."
RESUMED = "Session #{pk} is queued again; it continues from its checkpoint."
PAUSE_WITHDRAWN = "The pause request of session #{pk} is withdrawn; it keeps running."
STOP_REQUESTED = "Stop requested for session #{pk}: it stops at the end of the current epoch."
STOPPED = "Session #{pk} is cancelled."
BACKTEST_SUBMITTED = "Backtest session #{pk} submitted."
# ?part=live: the live part of the detail page alone (see the module docstring).
LIVE_PART = "live"


def _get_or_404(request, pk: int, *, summary: bool = False):
    try:
        return selectors.session_get(user=request.user, pk=pk, summary=summary)
    except NotFound as error:
        raise Http404(str(error)) from None


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
    live_only = request.GET.get("part") == LIVE_PART
    # The live part of the metric page this page shows: a page of older epochs stays on them.
    part_query = {"part": LIVE_PART, **({"after": after} if "after" in request.GET else {})}
    return render(request, "sessions/live_part.html" if live_only else "sessions/detail.html", {
        "session": session,
        "actions": session_actions(session, user=request.user),
        "failure": failure_reason(session.error) if session.error else "",
        "shows_traceback": shows_traceback(request.user),
        "metrics": metrics,
        "after": after,
        "latest": latest,
        "next_after": metrics[-1].pk if len(metrics) == METRICS_PER_PAGE else None,
        "usage": usage,
        # The live charts start from these samples: the stream sends only new ones.
        "usage_history": [resource_sample(row) for row in reversed(usage)],
        "log_tail": log_lines(log_tail(session.log_path, lines=LOG_LINES), user=request.user),
        "has_report": session.has_report,
        # A backtest has no epochs: its page draws no training curves.
        "has_epochs": session.session_type == session.SessionType.TRAINING,
        "part_url": f"{request.path}?{urlencode(part_query)}",
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
    except REFUSALS as error:
        messages.error(request, message_of(error))
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
    except REFUSALS as error:
        messages.error(request, message_of(error))
        return redirect("sessions:detail", pk=source.pk)
    messages.success(request, BACKTEST_SUBMITTED.format(pk=backtest.pk))
    return redirect("sessions:detail", pk=backtest.pk)


@login_required
def session_report_view(request, pk: int):
    session = _get_or_404(request, pk)
    report = selectors.session_report(session=session) or {}
    trades = report.get("trades") or report.get("orders") or []
    trades_page = Paginator(trades, TRADES_PER_PAGE).get_page(request.GET.get("page"))
    trade_columns, trade_rows = trade_table(trades, list(trades_page.object_list))
    return render(request, "sessions/report.html", {
        "session": session,
        "report": report,
        "split": split_words(report),
        "period": report_period(report),
        "benchmark": benchmark_words(report.get("benchmark")),
        "metric_rows": metric_rows(report),
        "trades_page": trades_page,
        "trade_columns": trade_columns,
        "trade_rows": trade_rows,
        "equity_chart": equity_chart(report),
        "drawdown_chart": drawdown_chart(report),
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
        "rows": [compare_row(session, series[session.pk]) for session in sessions],
        "curve_names": headings(selectors.COMPARE_METRICS),
        "report_names": headings(COMPARE_REPORT_METRICS),
        "chart_data": {
            "sessions": [{"id": s.pk, "label": f"#{s.pk} {s.strategy.name}"} for s in sessions],
            "series": {name: {str(s.pk): series[s.pk][name] for s in sessions} for name in selectors.COMPARE_METRICS},
        },
    })


def _non_negative_int(text: str | None, *, default: int = 0) -> int:
    try:
        return max(0, int(text)) if text else default
    except ValueError:
        return default
