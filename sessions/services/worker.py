"""What the worker running a session writes: its claim, each epoch, its heartbeat and resource
samples, and how its run ended.

A worker writes only while the row still names its run (status running, and its host, process id
and attempt): a session requeued behind its back (watchdog, admin) is left to its new worker.

A worker whose database stops answering waits for it (`patiently`) instead of giving its session up:
the write is tried again with a backoff, and the wait is written to the session's log, which its page
shows.
"""
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone

from common.errors import Conflict
from common.machine import usable_cores
from sessions import alerts
from sessions.models import PerformanceMetric, ResourceUsage, SessionStatus, StrategySession
from sessions.selectors import LOG_FILE, session_run_dir
from sessions.services.queue import dispatch_on_commit, retries_left
from sessions.services.transitions import TransitionConflict, session_transition

GPU_BUSY = "{device} already runs {count} sessions (TRADEMASTER['MAX_GPU_JOBS_PER_DEVICE'] = {limit})"
RETRY_REASON = "attempt {attempt}: retried after: {reason}"
DATABASE_WAITING = "the database did not answer {what} ({error}); waited {waited:.0f} s, trying again in {delay:.1f} s"
DATABASE_BACK = "the database answered {what} again after {waited:.0f} s"
DATABASE_GAVE_UP = (
    "the database did not answer {what} for {waited:.0f} s (TRADEMASTER['DATABASE_WAIT_SECONDS']): giving up"
)
# What a database that is restarting, failing over or unreachable raises; anything else is a bug.
DATABASE_DOWN = (OperationalError, InterfaceError)
# Any constant will do: it names the one lock that orders claims (PostgreSQL advisory locks are global).
_CLAIM_LOCK = 0x7E5510C5
_S = SessionStatus
_T = TypeVar("_T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Requests:
    """What the user asked of a running session, read between rollouts and at epoch boundaries."""

    cancel: bool
    pause: bool


@transaction.atomic
def session_claim(*, preferred: int | None = None, process_id: int, host: str) -> StrategySession | None:
    """Start the most urgent queued session this worker may run; None when there is none.

    Order: highest priority; then `preferred` (the session whose worker slot this is); then the
    oldest. A session whose CUDA device already runs MAX_GPU_JOBS_PER_DEVICE sessions waits.
    """
    _serialize_claims()
    queued = StrategySession.objects.filter(status=_S.QUEUED)
    if preferred is not None:
        queued = queued.annotate(
            not_preferred=Case(When(pk=preferred, then=Value(0)), default=Value(1), output_field=IntegerField())
        ).order_by("-priority", "not_preferred", "created_at", "pk")
    else:
        queued = queued.order_by("-priority", "created_at", "pk")
    busy = _busy_gpus()
    for candidate in queued:
        device = session_device(candidate.config)
        if _gpu_full(device, busy):
            continue
        slot = candidate.task_id
        try:
            started = _start(candidate, device=device, process_id=process_id, host=host)
        except TransitionConflict:
            continue  # cancelled by its owner meanwhile
        if preferred is not None and started.pk != preferred:
            _hand_over_slot(preferred=preferred, claimed=started, claimed_slot=slot)
        return started
    return None


def _hand_over_slot(*, preferred: int, claimed: StrategySession, claimed_slot: str) -> None:
    # The slot queued for `preferred` runs `claimed` instead, whose own slot has not run yet: it is
    # `preferred`'s now. So a queued session's task_id always names a slot still to come, which is what
    # the watchdog's sessions_dispatch_orphans checks against the broker.
    own_slot = StrategySession.objects.filter(pk=preferred, status=_S.QUEUED).values_list("task_id", flat=True).first()
    if own_slot is None:
        return
    StrategySession.objects.filter(pk=preferred).update(task_id=claimed_slot)
    StrategySession.objects.filter(pk=claimed.pk).update(task_id=own_slot)
    claimed.task_id = own_slot


@transaction.atomic
def session_start(*, session: StrategySession, process_id: int, host: str) -> StrategySession:
    """Start this queued session in the calling process (manage.py train --inline).

    Raises IllegalTransition when it is not queued, Conflict when its GPU is full.
    """
    _serialize_claims()
    device = session_device(session.config)
    busy = _busy_gpus()
    if _gpu_full(device, busy):
        limit = settings.TRADEMASTER["MAX_GPU_JOBS_PER_DEVICE"]
        raise Conflict(GPU_BUSY.format(device=device, count=busy[device], limit=limit))
    return _start(session, device=device, process_id=process_id, host=host)


def session_device(config: dict) -> str:
    """The device a session's config runs on in this process: "cpu", "cuda:N" or "mps"."""
    wanted = str((config.get("trainer") or {}).get("device", "auto"))
    if wanted == "auto":
        import torch  # only workers get here, and they have it loaded already

        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    # torch's "cuda" is the current device: device 0 in a process that never changed it.
    return "cuda:0" if wanted == "cuda" else wanted


def training_threads(*, cores: int | None = None) -> int:
    """The torch threads a training process gets: TRADEMASTER["TRAINING_THREADS"] when set, else its
    share of `cores` (this process's usable cores): WEB_CORES left to the web processes, the rest
    divided among the Q_CLUSTER["workers"] trainings that may run at once; at least 1."""
    given = settings.TRADEMASTER["TRAINING_THREADS"]
    if given:
        return int(given)
    if cores is None:
        cores = usable_cores()
    return max(1, (cores - settings.TRADEMASTER["WEB_CORES"]) // settings.Q_CLUSTER["workers"])


def one_line(error: str) -> str:
    """The line of `error` that says what happened: a traceback's last (the exception and its message)."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _start(session: StrategySession, *, device: str, process_id: int, host: str) -> StrategySession:
    attempt = max(session.attempt, 1)
    fields = {}
    # The error of a queued session says why it was queued again (the watchdog's reason, the last
    # attempt's traceback); the move to running clears it, so keep it where the attempt can show it.
    if attempt > 1 and session.error:
        fields["retry_reason"] = RETRY_REASON.format(attempt=attempt, reason=one_line(session.error))
    return session_transition(
        session=session,
        to=_S.RUNNING,
        process_id=process_id,
        worker_host=host,
        device=device,
        heartbeat_at=timezone.now(),
        attempt=attempt,
        threads=training_threads(),
        log_path=str(session_run_dir(session=session) / LOG_FILE),
        **fields,
    )


def _serialize_claims() -> None:
    # Two workers claiming at once would both see a GPU slot free. On PostgreSQL, a lock held to the
    # end of the transaction; SQLite's IMMEDIATE transactions serialise writers already.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CLAIM_LOCK])


def _busy_gpus() -> Counter:
    running = StrategySession.objects.filter(status=_S.RUNNING, device__startswith="cuda")
    return Counter(running.values_list("device", flat=True))


def _gpu_full(device: str, busy: Counter) -> bool:
    return device.startswith("cuda") and busy[device] >= settings.TRADEMASTER["MAX_GPU_JOBS_PER_DEVICE"]


def _own(session: StrategySession) -> QuerySet[StrategySession]:
    """The session's row, while it is still this worker's run."""
    return StrategySession.objects.filter(
        pk=session.pk, status=_S.RUNNING, process_id=session.process_id, worker_host=session.worker_host,
        attempt=session.attempt,
    )


def _lock_own(session: StrategySession) -> Requests | None:
    row = _own(session).select_for_update().values_list("cancel_requested", "pause_requested").first()
    return None if row is None else Requests(cancel=row[0], pause=row[1])


def session_requests(*, session: StrategySession) -> Requests | None:
    """What the user asked of `session` (stop, pause), read without a lock: a training asks between its
    rollouts, about once a second (TRADEMASTER["REQUEST_POLL_SECONDS"]). None once no longer its own."""
    row = _own(session).values_list("cancel_requested", "pause_requested").first()
    return None if row is None else Requests(cancel=row[0], pause=row[1])


def session_heartbeat(*, session: StrategySession) -> bool:
    """Record that the worker running `session` is alive. False once the session is no longer its own."""
    return _own(session).update(heartbeat_at=timezone.now()) == 1


def session_progress(*, session: StrategySession, epoch: int, total: int) -> bool:
    """Record the epochs done and planned as a training (re)starts. False when no longer its own."""
    return _own(session).update(progress_epoch=epoch, progress_total=total, heartbeat_at=timezone.now()) == 1


@transaction.atomic
def session_record_epoch(
    *, session: StrategySession, epoch: int, epochs: int, metrics: dict[str, float], checkpoint: str | Path
) -> Requests | None:
    """Store one epoch: its metrics (one bulk insert), the progress, the checkpoint and a heartbeat.

    Returns what the user asked meanwhile (stop, pause), or None, writing nothing, when the session
    is no longer this worker's. An epoch run again (a retry resumed from an earlier checkpoint)
    replaces its rows. The epoch's alerts (NaN or diverging loss) are recorded with it.
    """
    requests = _lock_own(session)
    if requests is None:
        return None
    _write_metrics(session, epoch, metrics, replace=True)
    alerts.alerts_check_epoch(session=session, epoch=epoch, metrics=metrics)
    _own(session).update(
        progress_epoch=epoch, progress_total=epochs, checkpoint_path=str(checkpoint), heartbeat_at=timezone.now()
    )
    return requests


@transaction.atomic
def session_backfill_metrics(*, session: StrategySession, history: list[dict[str, float]]) -> int:
    """Write the epochs of `history` that have no rows, and return how many.

    An attempt that died between writing an epoch's checkpoint and its metrics resumes after that
    epoch; the checkpoint's history still has it.
    """
    if _lock_own(session) is None:
        return 0
    have = set(PerformanceMetric.objects.filter(session=session).values_list("epoch", flat=True).distinct())
    missing = [metrics for metrics in history if int(metrics.get("epoch", 0)) not in have]
    for metrics in missing:
        _write_metrics(session, int(metrics["epoch"]), metrics, replace=False)
        alerts.alerts_check_epoch(session=session, epoch=int(metrics["epoch"]), metrics=metrics)
    return len(missing)


@transaction.atomic
def resource_usage_record(
    *, session: StrategySession, sample: dict[str, float | None],
    memory_total_mb: float | None = None, gpu_total_mb: float | None = None, recorded_at: datetime | None = None,
) -> ResourceUsage:
    """Store one resource sample of the process running `session` (keys: ResourceUsage's fields), and
    a resource_limit alert when it is near the machine's memory or the device's, given their totals.
    `recorded_at`: when it was taken, for a sample kept while the database did not answer."""
    usage = ResourceUsage.objects.create(session_id=session.pk, recorded_at=recorded_at or timezone.now(), **sample)
    alerts.alerts_check_resources(
        session=session, memory_mb=usage.memory_mb, memory_total_mb=memory_total_mb,
        gpu_memory_mb=usage.gpu_memory_mb, gpu_total_mb=gpu_total_mb,
    )
    return usage


@transaction.atomic
def session_finish(*, session: StrategySession, to: str, error: str = "", **fields: Any) -> StrategySession | None:
    """The end of this worker's run: move its session from running to `to` (completed, paused or
    cancelled), writing `fields` with it. None when the session was taken from this worker meanwhile."""
    if _lock_own(session) is None:
        return None
    if "result_data" in fields:
        fields["result_data"] = json_safe(fields["result_data"])
    return session_transition(session=session, to=to, error=error, **fields)


@transaction.atomic
def session_retry_or_fail(*, session: StrategySession, error: str, retry: bool = True) -> StrategySession | None:
    """The run raised: queue the session again (attempt + 1; it resumes from its last checkpoint)
    while retries are left, else fail it. `error` (the traceback) is kept either way.

    retry=False fails at once: a bad config or data file fails the same way every time. None when the
    session is no longer this worker's.
    """
    if _lock_own(session) is None:
        return None
    if retry and retries_left(session):
        session_transition(session=session, to=_S.QUEUED, error=error, attempt=session.attempt + 1)
        dispatch_on_commit(session)
    else:
        session_transition(session=session, to=_S.FAILED, error=error)
        alerts.alerts_session_failed(session=session, error=error)
    return session


def _write_metrics(session: StrategySession, epoch: int, metrics: dict[str, float], *, replace: bool) -> None:
    if replace:
        PerformanceMetric.objects.filter(session=session, epoch=epoch).delete()
    now = timezone.now()
    PerformanceMetric.objects.bulk_create([
        PerformanceMetric(session_id=session.pk, metric_type=name, value=_finite(value), epoch=epoch, timestamp=now)
        for name, value in metrics.items()
        if name != "epoch"  # the row's own column
    ])


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities as None, as PerformanceMetric stores them: PostgreSQL's jsonb
    refuses them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def patiently(function: Callable[..., _T], /, *args: Any, what: str, **kwargs: Any) -> _T:
    """`function(*args, **kwargs)`, called again while the database does not answer (DATABASE_DOWN): a
    worker's write must outlast a database restarting or failing over, not end its session.

    Waits TRADEMASTER["DATABASE_BACKOFF_SECONDS"][0] between tries, doubling to at most [1], and logs
    each wait (the session's log, which its page shows) naming `what` was being written. Gives up,
    raising the database's error, after TRADEMASTER["DATABASE_WAIT_SECONDS"]. Call it outside any
    transaction of its own: a transaction the database dropped cannot be tried again from inside.
    """
    delay, longest = settings.TRADEMASTER["DATABASE_BACKOFF_SECONDS"]
    limit = settings.TRADEMASTER["DATABASE_WAIT_SECONDS"]
    started, failed = time.monotonic(), False
    while True:
        try:
            result = function(*args, **kwargs)
        except DATABASE_DOWN as error:
            waited = time.monotonic() - started
            if waited >= limit:
                log.error(DATABASE_GAVE_UP.format(what=what, waited=waited))
                raise
            failed = True
            reason = one_line(str(error)) or type(error).__name__
            log.warning(DATABASE_WAITING.format(what=what, error=reason, waited=waited, delay=delay))
            _drop_broken_connection()
            time.sleep(delay)
            delay = min(delay * 2, longest)
            continue
        if failed:
            log.warning(DATABASE_BACK.format(what=what, waited=time.monotonic() - started))
        return result


def _drop_broken_connection() -> None:
    # A connection the database dropped stays broken: close it, so the next try connects afresh. Not
    # inside a transaction (a test's, or a caller's), whose connection must stay.
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()
