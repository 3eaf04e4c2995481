from pathlib import Path

from django.conf import settings
from django.db.models import QuerySet

from common.access import may_act, sees_everything
from common.errors import NotFound
from common.ids import MAX_ID, is_id
from sessions.models import PerformanceMetric, StrategySession
from strategies.config import config_public

SESSION_NOT_FOUND = "no session {pk}"
METRIC_PAGE_MAX = 1000
# The engine's checkpoint names (engine.training.trainer.LAST, BEST), repeated here so that the web
# process need not import torch to find a checkpoint.
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
LOG_FILE = "session.log"


def session_list(*, user, status: str | None = None) -> QuerySet[StrategySession]:
    """The sessions `user` may see (their strategies'; staff and superusers: everyone's), newest first,
    optionally of one status."""
    return _visible(StrategySession.objects.select_related("strategy", "strategy__owner"), user=user, status=status)


def _visible(sessions: QuerySet[StrategySession], *, user, status: str | None = None) -> QuerySet[StrategySession]:
    if not sees_everything(user):
        sessions = sessions.filter(strategy__owner=user)
    if status:
        sessions = sessions.filter(status=status)
    return sessions


# What a list of sessions leaves out: the config snapshot and the result, a whole config and a report
# (equity curves, trades) per row, which no list shows. StrategySession.report_summary stays: it is
# what has_report and a list's metrics read.
SUMMARY_DEFERRED = ("config", "result_data")


def summarised(sessions: QuerySet[StrategySession]) -> QuerySet[StrategySession]:
    """`sessions` without their heavy JSON columns (SUMMARY_DEFERRED)."""
    return sessions.defer(*SUMMARY_DEFERRED)


# What lists load: the session's own columns but SUMMARY_DEFERRED, and of its strategy and their owner
# what they show (the API's SessionOut): a strategy row also holds its whole config, a user row a
# password hash and timestamps, none of which a list shows.
SUMMARY_RELATED = ("strategy__name", "strategy__owner__username")
SUMMARY_FIELDS = (
    *(field.name for field in StrategySession._meta.concrete_fields if field.name not in SUMMARY_DEFERRED),
    *SUMMARY_RELATED,
)


def session_summaries(*, user, status: str | None = None) -> QuerySet[StrategySession]:
    """session_list for lists: without config and result_data (see summarised), and of the strategy and
    its owner only SUMMARY_RELATED (SUMMARY_FIELDS)."""
    return session_list(user=user, status=status).only(*SUMMARY_FIELDS)


# What the dashboard's panels show of a session (templates/includes/status.html and progress.html among
# them): the page every user opens first builds no more than that.
PANEL_FIELDS = (
    "id", "session_type", "status", "pause_requested", "cancel_requested", "progress_epoch", "progress_total",
    "created_at", "completed_at", "report_summary", "strategy__name",
)


def session_panel(*, user, statuses) -> QuerySet[StrategySession]:
    """The sessions `user` may see of `statuses`, newest first, with PANEL_FIELDS only (the strategy's
    name, not its owner): the dashboard's panels."""
    sessions = StrategySession.objects.select_related("strategy").only(*PANEL_FIELDS)
    return _visible(sessions, user=user).filter(status__in=statuses)


def session_get(*, user, pk: int, summary: bool = False) -> StrategySession:
    """One session `user` may see; NotFound for a missing one and for someone else's alike. With
    `summary`, without config and result_data (see summarised): for a page that shows neither."""
    sessions = session_summaries(user=user) if summary else session_list(user=user)
    try:
        if not is_id(pk):
            raise StrategySession.DoesNotExist
        return sessions.get(pk=pk)
    except StrategySession.DoesNotExist:
        raise NotFound(SESSION_NOT_FOUND.format(pk=pk)) from None


def metric_page(*, session: StrategySession, after: int = 0, limit: int = 100) -> list[PerformanceMetric]:
    """Up to `limit` (at most METRIC_PAGE_MAX) metric rows of `session` whose id is above `after`, by id.

    An id cursor rather than an offset: a training appends rows while a client pages, and the next
    page starts after the last id seen (`after=<last id>`) without skipping or repeating rows.
    """
    limit = max(1, min(int(limit), METRIC_PAGE_MAX))
    return list(session.metrics.filter(pk__gt=min(after, MAX_ID)).order_by("pk")[:limit])


def metric_last_page(*, session: StrategySession, limit: int = 100) -> tuple[list[PerformanceMetric], int]:
    """The newest `limit` metric rows of `session`, by id, and the cursor before them: the page and the
    `after` that metric_page would take to return it (0 when they are all the rows there are), in
    one query."""
    limit = max(1, min(int(limit), METRIC_PAGE_MAX))
    newest = list(session.metrics.order_by("-pk")[:limit + 1])
    cursor = newest[limit].pk if len(newest) > limit else 0
    return newest[:limit][::-1], cursor


def metric_exists_after(*, session: StrategySession, after: int) -> bool:
    return session.metrics.filter(pk__gt=min(after, MAX_ID)).exists()


def session_report(*, session: StrategySession, user=None) -> dict | None:
    """The backtest report a session ended with, or None while it has none.

    A completed training session's report is its best checkpoint's on the test split; a backtest
    session's is the one it ran. The engine's report ("metrics", "benchmark_metrics", "alpha", "beta",
    "equity_curve", "drawdown", "trades", ...), its "config" naming the dataset by its name. Shown to
    `user` who may not act on the session (staff, someone else's): without "config", which is the
    strategy owner's work.
    """
    report = (session.result_data or {}).get("report")
    if not report:
        return None
    if "config" not in report:
        return report
    if user is not None and not may_act(user=user, owner_id=session.strategy.owner_id):
        return {key: value for key, value in report.items() if key != "config"}
    return {**report, "config": config_public(report["config"], dataset_name=session.strategy.dataset.name)}


def session_queued_exists() -> bool:
    return StrategySession.objects.filter(status=StrategySession.Status.QUEUED).exists()


def session_run_dir(*, session: StrategySession) -> Path:
    """Where a session's checkpoints and log file live: RUNS_DIR/<id>/."""
    return Path(settings.TRADEMASTER["RUNS_DIR"]) / str(session.pk)


# The comparison page ------------------------------------------------------------------------------

COMPARE_MAX = 10
# What the comparison page overlays, by epoch: what an operator compares runs by first.
COMPARE_METRICS = ("eval/total_return", "eval/sharpe", "train/loss")


def session_compare(*, user, ids: list[int]) -> list[StrategySession]:
    """The sessions of `ids` in that order (duplicates dropped); NotFound if `user` may not see one of
    them, so that a shared link to someone else's run reads as missing, as its detail page does."""
    ids = list(dict.fromkeys(ids))
    found = session_list(user=user).in_bulk([pk for pk in ids if is_id(pk)])
    for pk in ids:
        if pk not in found:
            raise NotFound(SESSION_NOT_FOUND.format(pk=pk))
    return [found[pk] for pk in ids]


def metric_series(*, sessions: list[StrategySession], metric_types=COMPARE_METRICS) -> dict[int, dict[str, list]]:
    """session id -> metric type -> [[epoch, value], ...] by epoch, in one query. A value is None where
    the metric was NaN/inf."""
    series: dict[int, dict[str, list]] = {s.pk: {name: [] for name in metric_types} for s in sessions}
    rows = (
        PerformanceMetric.objects.filter(session__in=sessions, metric_type__in=metric_types)
        .order_by("session_id", "epoch", "pk")
        .values_list("session_id", "metric_type", "epoch", "value")
    )
    for session_pk, metric_type, epoch, value in rows:
        series[session_pk][metric_type].append([epoch, value])
    return series
