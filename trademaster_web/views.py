"""The dashboard: the one page that reads from both apps, so it lives with the project, not in either."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from sessions.models import SessionStatus
from sessions.selectors import session_list, session_report
from strategies.selectors import strategy_list

STRATEGIES_SHOWN = 10
ACTIVE_SHOWN = 20
RESULTS_SHOWN = 5
# The test-split numbers an operator compares first; the report page has all of them.
KEY_METRICS = ("total_return", "sharpe", "max_drawdown")
ACTIVE = (SessionStatus.RUNNING, SessionStatus.QUEUED)


@login_required
def dashboard_view(request):
    # Three independent reads, one per panel; each is a selector of its app.
    user = request.user
    active = [s for status in ACTIVE for s in session_list(user=user, status=status)[:ACTIVE_SHOWN]]
    completed = session_list(user=user, status=SessionStatus.COMPLETED)[:RESULTS_SHOWN]
    return render(request, "dashboard.html", {
        "strategies": strategy_list(user=user)[:STRATEGIES_SHOWN],
        "active": active,
        "results": [_result(session) for session in completed],
        "key_metrics": KEY_METRICS,
    })


def _result(session) -> dict:
    report = session_report(session=session) or {}
    ours, theirs = report.get("metrics") or {}, report.get("benchmark_metrics") or {}
    return {
        "session": session,
        "has_report": bool(report),
        "values": [(name, ours.get(name), theirs.get(name)) for name in KEY_METRICS],
        "alpha": report.get("alpha"),
    }
