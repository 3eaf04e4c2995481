"""The watchdog's decision: a running session whose worker is gone is queued again or failed, never
left "running". sessions.monitor runs it every WATCHDOG_SECONDS inside the cluster."""
import os
import socket
from datetime import datetime
from functools import cache

import psutil
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sessions import alerts
from sessions.models import SessionStatus, StrategySession
from sessions.services.queue import dispatch_on_commit, retries_left
from sessions.services.transitions import session_transition

HEARTBEAT_STOPPED = "its worker stopped beating: last heartbeat {age:.0f} s ago (timeout {timeout} s)"
PROCESS_GONE = "its worker process {pid} on {host} is gone"
RETRIES_SPENT = "{reason}; failed after {attempts} attempts (TRADEMASTER['MAX_RETRIES'] = {retries})"
LOST_WHILE_STOPPING = "{reason}; it was being stopped"
LOST_WHILE_PAUSING = "{reason}; it was being paused, and resumes from its last checkpoint"
_S = SessionStatus


def sessions_recover_lost(*, now: datetime | None = None) -> list[StrategySession]:
    """Put running sessions whose worker is gone back in the queue (attempt + 1, resuming from their
    last checkpoint), or fail them with the reason once TRADEMASTER["MAX_RETRIES"] is spent.

    Gone: no heartbeat for HEARTBEAT_TIMEOUT_SECONDS, or, on this host, where its process id means
    something, no such process any more (a worker killed with kill -9 is noticed at the next sweep
    rather than after the timeout). A lost session whose stop or pause was requested is cancelled
    or paused instead. Returns the sessions it moved.
    """
    now = now or timezone.now()
    timeout = settings.TRADEMASTER["HEARTBEAT_TIMEOUT_SECONDS"]
    host = this_host()
    moved = []
    for session in StrategySession.objects.filter(status=_S.RUNNING):
        reason = _lost_because(session, now=now, timeout=timeout, host=host)
        if reason and _recover(session, reason):
            moved.append(session)
    return moved


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


def _lost_because(session: StrategySession, *, now: datetime, timeout: int, host: str) -> str:
    beat = session.heartbeat_at or session.updated_at
    age = (now - beat).total_seconds()
    if age > timeout:
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
