"""The JSON API of sessions. Mounted by trademaster_web.api, which turns errors into its one shape:
404 for someone else's session, 409 for a move the session's status does not allow."""
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate

from common.errors import Conflict, NotFound
from common.ids import MAX_ID
from common.schemas import ERRORS
from sessions import selectors, services
from sessions.models import StrategySession
from sessions.schemas import MetricPageOut, SessionIn, SessionOut
from sessions.schemas import Status as SessionStatusName
from strategies.selectors import strategy_get

NO_REPORT = "session {pk} has no report: it is {status}"

# POST /api/strategies/{id}/sessions: mounted under /strategies beside the strategies' own router.
strategy_sessions_router = Router(tags=["sessions"])
sessions_router = Router(tags=["sessions"])


def _source(request: HttpRequest, pk: int | None) -> StrategySession | None:
    # A source id that does not exist (or is not yours) is bad input on that field, not a missing page.
    if pk is None:
        return None
    try:
        return selectors.session_get(user=request.auth, pk=pk)
    except NotFound as error:
        raise ValidationError({"source": str(error)}) from None


@strategy_sessions_router.post("/{strategy_id}/sessions", response={201: SessionOut, **ERRORS})
def submit_session(request: HttpRequest, strategy_id: int, payload: SessionIn):
    """Queue a training of the strategy's current config, or a backtest of a completed training's
    best checkpoint (`source`). 409 when you already have MAX_SESSIONS_PER_USER active sessions."""
    strategy = strategy_get(user=request.auth, pk=strategy_id)
    session = services.session_submit(
        strategy=strategy, user=request.auth, session_type=payload.session_type, priority=payload.priority,
        source=_source(request, payload.source),
    )
    return Status(201, session)


@sessions_router.get("", response={200: list[SessionOut], **ERRORS})
@paginate
def list_sessions(request: HttpRequest, status: SessionStatusName | None = None):
    """Your sessions, newest first (staff: everyone's); `?status=running` for one status."""
    return selectors.session_summaries(user=request.auth, status=status)


@sessions_router.get("/{session_id}", response={200: SessionOut, **ERRORS})
def get_session(request: HttpRequest, session_id: int):
    return selectors.session_get(user=request.auth, pk=session_id)


@sessions_router.post("/{session_id}/pause", response={200: SessionOut, **ERRORS})
def pause_session(request: HttpRequest, session_id: int):
    """A running session pauses at the end of its current epoch (pause_requested until then)."""
    session = selectors.session_get(user=request.auth, pk=session_id)
    return services.session_pause(session=session, user=request.auth)


@sessions_router.post("/{session_id}/resume", response={200: SessionOut, **ERRORS})
def resume_session(request: HttpRequest, session_id: int):
    """A paused session is queued again and continues from its checkpoint."""
    session = selectors.session_get(user=request.auth, pk=session_id)
    return services.session_resume(session=session, user=request.auth)


@sessions_router.post("/{session_id}/stop", response={200: SessionOut, **ERRORS})
def stop_session(request: HttpRequest, session_id: int):
    """A running session stops at the end of its current epoch (cancel_requested until then); any
    other unfinished one is cancelled at once."""
    session = selectors.session_get(user=request.auth, pk=session_id)
    return services.session_stop(session=session, user=request.auth)


@sessions_router.get("/{session_id}/metrics", response={200: MetricPageOut, **ERRORS})
def session_metrics(
    request: HttpRequest, session_id: int,
    after: int = Query(0, ge=0, le=MAX_ID), limit: int = Query(100, ge=1, le=selectors.METRIC_PAGE_MAX),
):
    """The session's metric rows with an id above `after`, by id, at most `limit` (1..1000). Poll a
    running session with `after` = the previous answer's `next`."""
    session = selectors.session_get(user=request.auth, pk=session_id)
    items = selectors.metric_page(session=session, after=after, limit=limit)
    cursor = items[-1].pk if items else after
    return {"items": items, "next": cursor, "has_more": selectors.metric_exists_after(session=session, after=cursor)}


@sessions_router.get("/{session_id}/report", response={200: dict[str, Any], **ERRORS})
def session_report(request: HttpRequest, session_id: int):
    """The backtest report the session ended with (a training's: its best checkpoint on the test
    split): "metrics" and "benchmark_metrics" keyed as the engine has them, "alpha", "beta",
    "equity_curve", "drawdown", "trades", ... 409 while it has none."""
    session = selectors.session_get(user=request.auth, pk=session_id)
    report = selectors.session_report(session=session, user=request.auth)
    if report is None:
        raise Conflict(NO_REPORT.format(pk=session.pk, status=session.status))
    return report
