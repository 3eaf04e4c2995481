"""The dashboard: the one page that reads from both apps, so it lives with the project, not in either.

Its sessions panels are also served alone, as ?part=live: dashboard_live.js fetches them every few
seconds, so a session submitted, paused or finished elsewhere shows without a reload, drawn by the
same template as the page.
"""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from sessions.models import SessionStatus
from sessions.presenters import KEY_METRICS, headings, key_results
from sessions.selectors import session_panel
from strategies.selectors import strategy_panel

STRATEGIES_SHOWN = 10
ACTIVE_SHOWN = 20
RESULTS_SHOWN = 5
# What has not ended: a paused session waits for its owner, who looks for it here.
ACTIVE = (SessionStatus.RUNNING, SessionStatus.QUEUED, SessionStatus.PENDING, SessionStatus.PAUSED)
# Running, queued, pending, paused is their reverse alphabetical order: the database sorts by the
# column, which costs less than a CASE expression (the dashboard is the page every user opens first).
RUNNING_FIRST = "-status"
LIVE_PART = "live"


@login_required
def dashboard_view(request):
    # Independent reads, one per panel; each is a selector of its app.
    user = request.user
    active = session_panel(user=user, statuses=ACTIVE).order_by(RUNNING_FIRST, "-created_at")
    completed = session_panel(user=user, statuses=[SessionStatus.COMPLETED]).order_by("-completed_at", "-pk")
    context = {
        "active": active[:ACTIVE_SHOWN],
        "results": [_result(session) for session in completed[:RESULTS_SHOWN]],
        "key_metrics": headings(KEY_METRICS),
    }
    if request.GET.get("part") == LIVE_PART:
        return render(request, "includes/dashboard_sessions.html", context)
    return render(request, "dashboard.html", {**context, "strategies": strategy_panel(user=user)[:STRATEGIES_SHOWN]})


def _result(session) -> dict:
    summary = session.report_summary or {}
    return {"session": session, "metrics": key_results(summary, KEY_METRICS), "alpha": summary.get("alpha")}
