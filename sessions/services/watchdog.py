"""The watchdog's decisions: a running session whose worker is gone is queued again or failed, never
left "running"; a queued session whose worker slot is gone gets a new one, never left waiting.
sessions.monitor runs them when a cluster's worker starts and every WATCHDOG_SECONDS after."""
import logging
import os
import socket
from datetime import datetime, timedelta
from functools import cache

import psutil
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sessions import alerts
from sessions.models import SessionStatus, StrategySession
from sessions.services.queue import dispatch_now, dispatch_on_commit, retries_left
from sessions.services.transitions import session_transition

HEARTBEAT_STOPPED = "its worker stopped beating: last heartbeat {age:.0f} s ago (timeout {timeout} s)"
PROCESS_GONE = "its worker process {pid} on {host} is gone"
RETRIES_SPENT = "{reason}; failed after {attempts} attempts (TRADEMASTER['MAX_RETRIES'] = {retries})"
LOST_WHILE_STOPPING = "{reason}; it was being stopped"
LOST_WHILE_PAUSING = "{reason}; it was being paused, and resumes from its last checkpoint"
SLOT_GONE = "its worker slot {task} is no longer in the queue"
SLOT_TAKEN_BEFORE_START = (
    "its worker slot {task} was taken from the queue at {pulled:%Y-%m-%d %H:%M:%S}, before this cluster started"
)
SLOT_DISPATCHED = "session %s waited with no live worker slot (%s): queued slot %s"
_S = SessionStatus

log = logging.getLogger(__name__)


def sessions_recover_lost(*, now: datetime | None = None, reachable_since: datetime | None = None
                          ) -> list[StrategySession]:
    """Put running sessions whose worker is gone back in the queue (attempt + 1, resuming from their
    last checkpoint), or fail them with the reason once TRADEMASTER["MAX_RETRIES"] is spent.

    Gone: no heartbeat for HEARTBEAT_TIMEOUT_SECONDS, or, on this host, where its process id means
    something, no such process any more (a worker killed with kill -9 is noticed at the next sweep
    rather than after the timeout). A lost session whose stop or pause was requested is cancelled
    or paused instead. Returns the sessions it moved.

    `reachable_since`: when the caller got the database back after losing it. No worker could beat
    while it was away, so heartbeats are judged from then: an outage is not a lost worker.
    """
    now = now or timezone.now()
    timeout = settings.TRADEMASTER["HEARTBEAT_TIMEOUT_SECONDS"]
    host = this_host()
    moved = []
    for session in StrategySession.objects.filter(status=_S.RUNNING):
        reason = _lost_because(session, now=now, timeout=timeout, host=host, reachable_since=reachable_since)
        if reason and _recover(session, reason):
            moved.append(session)
    return moved


def sessions_dispatch_orphans(*, cluster_started: datetime, now: datetime | None = None) -> list[StrategySession]:
    """Queue a new worker slot (django-q2 task) for each queued session whose slot will never run it,
    so that no queued session waits for a person or for Q_CLUSTER["retry"] (hours). Returns them.

    A session's slot (its task_id) is live while it waits in the broker's queue, or was taken from it
    by this cluster (at or after `cluster_started`, when the calling worker's cluster started). It is
    gone when the broker no longer has it (run and acknowledged, failed, never queued), or was taken
    before this cluster started: by a cluster killed since, whose task the ORM broker would hand out
    again only after Q_CLUSTER["retry"]. Another cluster alive elsewhere may hold that one; a second
    slot is harmless (session_claim starts a session once, and a slot that finds nothing queued ends),
    and the new slot is the session's, so this happens at most once per session and cluster start.
    """
    queued = list(StrategySession.objects.filter(status=_S.QUEUED).values_list("pk", "task_id"))
    if not queued:
        return []
    slots = _broker_slots(now or timezone.now())
    moved = []
    for pk, task_id in queued:
        reason = _slot_gone_because(task_id, slots, cluster_started)
        if reason:
            session = _dispatch_again(pk, task_id, reason)
            if session is not None:
                moved.append(session)
    return moved


def _broker_slots(now: datetime) -> dict[str, datetime | None]:
    """{task id: when a cluster took it from the queue, None while it waits} of the ORM broker's tasks."""
    from django_q.conf import Conf
    from django_q.models import OrmQ

    slots = {}
    for row in OrmQ.objects.all():
        # The broker locks a task it hands out until Conf.RETRY seconds after; a waiting one is unlocked.
        taken = row.lock and row.lock > now
        slots[row.task_id()] = row.lock - timedelta(seconds=Conf.RETRY) if taken else None
    return slots


def _slot_gone_because(task_id: str, slots: dict[str, datetime | None], cluster_started: datetime) -> str:
    if task_id not in slots:
        return SLOT_GONE.format(task=task_id or "(none)")
    pulled = slots[task_id]
    if pulled is not None and pulled < cluster_started:
        return SLOT_TAKEN_BEFORE_START.format(task=task_id, pulled=pulled)
    return ""


@transaction.atomic
def _dispatch_again(pk: int, task_id: str, reason: str) -> StrategySession | None:
    # Only if nothing changed since it was judged: claimed, cancelled, or given a slot by another
    # worker's watchdog meanwhile (the row lock orders them; the new slot commits with the new task_id).
    locked = StrategySession.objects.select_for_update().filter(pk=pk, status=_S.QUEUED, task_id=task_id).first()
    if locked is None:
        return None
    new_task = dispatch_now(locked)
    log.warning(SLOT_DISPATCHED, pk, reason, new_task)
    locked.refresh_from_db()
    return locked


@cache
def this_host() -> str:
    """Where process ids mean the same as here: the host name and, on Linux, the PID namespace.

    Two containers can share a host name (network_mode: host) yet not see each other's processes;
    the watchdog must not take a process it cannot see for a dead one.
    """
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()} pid-ns:{namespace}"


def _lost_because(session: StrategySession, *, now: datetime, timeout: int, host: str,
                  reachable_since: datetime | None) -> str:
    beat = session.heartbeat_at or session.updated_at
    age = (now - beat).total_seconds()
    since = max(beat, reachable_since) if reachable_since else beat
    if (now - since).total_seconds() > timeout:
        return HEARTBEAT_STOPPED.format(age=age, timeout=timeout)
    if session.worker_host == host and session.process_id and not process_alive(session.process_id, since=beat):
        return PROCESS_GONE.format(pid=session.process_id, host=host)
    return ""


def process_alive(pid: int, *, since: datetime) -> bool:
    """Whether process `pid` runs and is the one that beat at `since`, not a later one given its id."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False  # killed, not yet reaped by its parent
        # A second of slack: psutil derives start times from clock ticks since boot.
        return process.create_time() <= since.timestamp() + 1
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; whose it is we cannot tell


@transaction.atomic
def _recover(session: StrategySession, reason: str) -> bool:
    # Only if nothing changed since it was judged lost: its worker may have beaten or finished since.
    locked = StrategySession.objects.select_for_update().filter(
        pk=session.pk, status=_S.RUNNING, process_id=session.process_id, worker_host=session.worker_host,
        attempt=session.attempt, heartbeat_at=session.heartbeat_at,
    ).first()
    if locked is None:
        return False
    if locked.cancel_requested:
        session_transition(session=locked, to=_S.CANCELLED, error=LOST_WHILE_STOPPING.format(reason=reason))
    elif locked.pause_requested:
        session_transition(session=locked, to=_S.PAUSED, error=LOST_WHILE_PAUSING.format(reason=reason))
    elif retries_left(locked):
        session_transition(session=locked, to=_S.QUEUED, error=reason, attempt=locked.attempt + 1)
        dispatch_on_commit(locked)
    else:
        retries = settings.TRADEMASTER["MAX_RETRIES"]
        error = RETRIES_SPENT.format(reason=reason, attempts=locked.attempt, retries=retries)
        session_transition(session=locked, to=_S.FAILED, error=error)
        alerts.alerts_session_failed(session=locked, error=error)
    session.refresh_from_db()
    return True
