"""The watchdog: a running session whose worker is gone is queued again (resuming from its
checkpoint) or failed with the reason, never left running."""
import datetime
import os
import socket
import subprocess
import sys

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from sessions import tasks
from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.services import (
    HEARTBEAT_STOPPED,
    PROCESS_GONE,
    RETRIES_SPENT,
    process_alive,
    session_start,
    session_submit,
    sessions_recover_lost,
    this_host,
)

pytestmark = pytest.mark.django_db

HOST = this_host()


@pytest.fixture
def timeout(settings) -> int:
    settings.TRADEMASTER = {**settings.TRADEMASTER, "HEARTBEAT_TIMEOUT_SECONDS": 60, "MAX_RETRIES": 2}
    return 60


@pytest.fixture
def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def start(tiny_strategy, user):
    def make(*, pid: int = os.getpid(), host: str = HOST, beat_seconds_ago: float = 0.0, attempt: int = 1,
             **flags) -> StrategySession:
        session = session_submit(strategy=tiny_strategy, user=user, enqueue=False)
        session = session_start(session=session, process_id=pid, host=host)
        beat = timezone.now() - datetime.timedelta(seconds=beat_seconds_ago)
        StrategySession.objects.filter(pk=session.pk).update(heartbeat_at=beat, attempt=attempt, **flags)
        session.refresh_from_db()
        return session

    return make


def test_a_session_without_a_heartbeat_for_the_timeout_is_requeued_with_an_attempt_more(
    start, timeout, django_capture_on_commit_callbacks
):
    lost = start(host="another-host", beat_seconds_ago=timeout + 5)

    with django_capture_on_commit_callbacks(execute=True):
        moved = sessions_recover_lost()

    lost.refresh_from_db()
    assert moved == [lost]
    assert (lost.status, lost.attempt) == (S.QUEUED, 2)
    assert lost.error == HEARTBEAT_STOPPED.format(age=timeout + 5, timeout=timeout)
    assert [q.task["args"][0] for q in OrmQ.objects.all()] == [lost.pk]  # a slot to resume it


def test_a_dead_worker_process_on_this_host_is_noticed_before_the_timeout(start, timeout, dead_pid):
    lost = start(pid=dead_pid)

    sessions_recover_lost()

    lost.refresh_from_db()
    assert (lost.status, lost.attempt, lost.error) == (S.QUEUED, 2, PROCESS_GONE.format(pid=dead_pid, host=HOST))


def test_live_workers_and_other_hosts_processes_are_left_alone(start, timeout, dead_pid):
    alive = start()  # this process, beating
    elsewhere = start(pid=dead_pid, host="another-host")  # that id means nothing here

    assert sessions_recover_lost() == []

    assert {s.status for s in StrategySession.objects.filter(pk__in=[alive.pk, elsewhere.pk])} == {S.RUNNING}


def test_once_its_retries_are_spent_a_lost_session_fails_with_the_reason(start, timeout):
    lost = start(host="another-host", beat_seconds_ago=timeout + 5, attempt=3)

    sessions_recover_lost()

    lost.refresh_from_db()
    reason = HEARTBEAT_STOPPED.format(age=timeout + 5, timeout=timeout)
    assert (lost.status, lost.error) == (S.FAILED, RETRIES_SPENT.format(reason=reason, attempts=3, retries=2))
    alert = lost.alerts.get()
    assert (alert.kind, alert.severity) == ("session_failed", "critical")
    assert alert.message == lost.error.splitlines()[-1].strip()


def test_a_lost_session_being_stopped_or_paused_ends_as_asked(start, timeout, dead_pid):
    stopping = start(pid=dead_pid, cancel_requested=True)
    pausing = start(pid=dead_pid, pause_requested=True)

    sessions_recover_lost()

    assert StrategySession.objects.get(pk=stopping.pk).status == S.CANCELLED
    assert StrategySession.objects.get(pk=pausing.pk).status == S.PAUSED


def test_the_watchdog_judges_the_clock_it_is_given(start, timeout):
    session = start(host="another-host")

    assert sessions_recover_lost(now=timezone.now() + datetime.timedelta(seconds=timeout - 1)) == []
    assert sessions_recover_lost(now=timezone.now() + datetime.timedelta(seconds=timeout + 1)) == [session]


def test_a_process_id_given_to_a_later_process_does_not_count_as_alive(dead_pid):
    long_ago = timezone.now() - datetime.timedelta(days=365 * 30)

    assert process_alive(os.getpid(), since=timezone.now())
    assert not process_alive(os.getpid(), since=long_ago)  # this process started after that beat
    assert not process_alive(dead_pid, since=timezone.now())


def test_this_host_names_the_pid_namespace_too():
    # Containers sharing a host name need not see each other's processes.
    assert this_host().startswith(socket.gethostname()) and "pid-ns:" in this_host()


def test_the_watchdog_task_reports_what_it_moved(start, timeout):
    lost = start(host="another-host", beat_seconds_ago=timeout + 5)

    assert tasks.recover_lost_sessions() == f"recovered 1 sessions; {lost.pk}: queued"
