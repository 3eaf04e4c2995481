"""The dashboard: the one page that reads from both apps, so it lives with the project, not in either."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from sessions.models import SessionStatus
from sessions.selectors import session_panel
from strategies.selectors import strategy_panel

STRATEGIES_SHOWN = 10
ACTIVE_SHOWN = 20
RESULTS_SHOWN = 5
# The test-split numbers an operator compares first; the report page has all of them.
KEY_METRICS = ("total_return", "sharpe", "max_drawdown")
ACTIVE = (SessionStatus.RUNNING, SessionStatus.QUEUED)
# Running before queued is their reverse alphabetical order: the database sorts by the column, which
# costs less than a CASE expression (the dashboard is the page every user opens first).
RUNNING_FIRST = "-status"


@login_required
def dashboard_view(request):
    # Three independent reads, one per panel; each is a selector of its app.
    user = request.user
    active = session_panel(user=user, statuses=ACTIVE).order_by(RUNNING_FIRST, "-created_at")
    completed = session_panel(user=user, statuses=[SessionStatus.COMPLETED]).order_by("-completed_at", "-pk")
    return render(request, "dashboard.html", {
        "strategies": strategy_panel(user=user)[:STRATEGIES_SHOWN],
        "active": active[:ACTIVE_SHOWN],
        "results": [_result(session) for session in completed[:RESULTS_SHOWN]],
        "key_metrics": KEY_METRICS,
    })


def _result(session) -> dict:
    summary = session.report_summary or {}
    ours, theirs = summary.get("metrics") or {}, summary.get("benchmark_metrics") or {}
    return {
        "session": session,
        "metrics": [(name, ours.get(name), theirs.get(name)) for name in KEY_METRICS],
        "alpha": summary.get("alpha"),
    }
