"""The dashboard: the one page that reads from both apps, so it lives with the project, not in either."""
from django.contrib.auth.decorators import login_required
from django.db.models import Case, Value, When
from django.shortcuts import render

from sessions.models import SessionStatus
from sessions.selectors import session_results, session_summaries
from strategies.selectors import strategy_list

STRATEGIES_SHOWN = 10
ACTIVE_SHOWN = 20
RESULTS_SHOWN = 5
# The test-split numbers an operator compares first; the report page has all of them.
KEY_METRICS = ("total_return", "sharpe", "max_drawdown")
ACTIVE = (SessionStatus.RUNNING, SessionStatus.QUEUED)
# What the session panels show (templates/includes/status.html and progress.html among them): loading
# no more keeps the dashboard, the page every user opens first, from building rows it does not show.
PANEL_FIELDS = (
    "id", "session_type", "status", "pause_requested", "cancel_requested", "progress_epoch", "progress_total",
    "created_at", "completed_at", "strategy__name",
)


@login_required
def dashboard_view(request):
    # Three independent reads, one per panel; each is a selector of its app.
    user = request.user
    running_first = Case(*(When(status=status, then=Value(rank)) for rank, status in enumerate(ACTIVE)))
    active = _panel(session_summaries(user=user)).filter(status__in=ACTIVE).order_by(running_first, "-created_at")
    completed = _panel(session_results(user=user))[:RESULTS_SHOWN]
    return render(request, "dashboard.html", {
        "strategies": strategy_list(user=user)[:STRATEGIES_SHOWN],
        "active": active[:ACTIVE_SHOWN],
        "results": [_result(session) for session in completed],
        "key_metrics": KEY_METRICS,
    })


def _panel(sessions):
    # The panels show no owner: session_list's join to it goes.
    return sessions.select_related(None).select_related("strategy").only(*PANEL_FIELDS)


def _result(session) -> dict:
    ours, theirs = session.report_metrics or {}, session.report_benchmark_metrics or {}
    return {
        "session": session,
        "has_report": session.has_report,
        "values": [(name, ours.get(name), theirs.get(name)) for name in KEY_METRICS],
        "alpha": session.report_alpha,
    }
