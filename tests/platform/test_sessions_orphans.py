"""Worker slots: a queued session whose django-q2 task will never run it (taken by a cluster killed
since, or gone from the broker) gets a new one from the watchdog, and a spare slot never runs a
session twice."""
import datetime

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ

from sessions import tasks
from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.services import session_claim, session_stop, session_submit
from sessions.services.watchdog import sessions_dispatch_orphans

pytestmark = pytest.mark.django_db

SECOND = datetime.timedelta(seconds=1)


@pytest.fixture
def submit(tiny_strategy, user, django_capture_on_commit_callbacks):
    """submit(priority=0) -> a queued session with its slot waiting in the broker."""

    def make(priority: int = 0) -> StrategySession:
        with django_capture_on_commit_callbacks(execute=True):
            session = session_submit(strategy=tiny_strategy, user=user, priority=priority)
        session.refresh_from_db()
        assert session.task_id
        return session

    return make


def taken_by_a_cluster() -> list[str]:
    """What the cluster's pusher does: take the waiting tasks from the ORM broker (locking them for
    Q_CLUSTER["retry"]); returns their ids."""
    taken = []
    while rows := get_broker().dequeue():
        taken += [OrmQ.objects.get(pk=pk).task_id() for pk, _ in rows]
    return taken


def fresh(session: StrategySession) -> StrategySession:
    return StrategySession.objects.get(pk=session.pk)


def test_a_slot_waiting_in_the_queue_or_taken_by_this_cluster_is_left_alone(submit):
    waiting = submit()
    started = timezone.now() - SECOND

    assert sessions_dispatch_orphans(cluster_started=started) == []
    assert taken_by_a_cluster() == [waiting.task_id]
    assert sessions_dispatch_orphans(cluster_started=started) == []
    assert fresh(waiting).task_id == waiting.task_id and OrmQ.objects.count() == 1


def test_a_slot_taken_before_this_cluster_started_is_replaced_once(submit):
    orphan = submit()
    taken_by_a_cluster()  # then the cluster was killed with kill -9, its task with it
    restarted = timezone.now() + SECOND

    assert sessions_dispatch_orphans(cluster_started=restarted) == [fresh(orphan)]

    new_slot = fresh(orphan).task_id
    assert new_slot != orphan.task_id
    waiting = OrmQ.objects.filter(lock__lte=timezone.now())
    assert [(row.task_id(), row.task["args"]) for row in waiting] == [(new_slot, (orphan.pk,))]
    assert sessions_dispatch_orphans(cluster_started=restarted) == []  # its new slot waits: once is enough


def test_a_slot_the_broker_no_longer_has_is_replaced(submit):
    orphan = submit()
    OrmQ.objects.all().delete()  # run and acknowledged without starting it (it failed), or never queued

    assert sessions_dispatch_orphans(cluster_started=timezone.now()) == [fresh(orphan)]
    assert [row.task_id() for row in OrmQ.objects.all()] == [fresh(orphan).task_id]


def test_sessions_that_are_not_queued_are_not_given_slots(submit, user):
    cancelled = submit()
    session_stop(session=cancelled, user=user)
    OrmQ.objects.all().delete()

    assert sessions_dispatch_orphans(cluster_started=timezone.now()) == []
    assert not OrmQ.objects.exists()


def test_a_spare_slot_never_runs_a_session_twice(submit, runs_dir):
    session = submit()
    taken_by_a_cluster()
    sessions_dispatch_orphans(cluster_started=timezone.now() + SECOND)
    assert OrmQ.objects.count() == 2  # its lost slot, taken, and the new one: two slots, one session

    assert tasks.run_session(session.pk) == f"session {session.pk}: completed"
    assert tasks.run_session(session.pk) == "nothing queued"
    done = fresh(session)
    assert (done.status, done.attempt) == (S.COMPLETED, 1)


def test_a_slot_that_starts_a_more_urgent_session_hands_that_sessions_slot_to_its_own(submit):
    mine = submit()
    urgent = submit(priority=1)

    started = session_claim(preferred=mine.pk, process_id=4242, host="test-host")

    assert started.pk == urgent.pk and started.status == S.RUNNING
    # `mine` waits for the slot `urgent` was queued with, which has not run; `urgent` names the one running it.
    assert (fresh(mine).task_id, fresh(urgent).task_id) == (urgent.task_id, mine.task_id)
