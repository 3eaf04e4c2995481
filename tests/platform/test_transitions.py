import threading

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.services import (
    ILLEGAL_TRANSITION,
    RESERVED_FIELDS,
    TRANSITION_CONFLICT,
    IllegalTransition,
    TransitionConflict,
    session_transition,
)

pytestmark = pytest.mark.django_db

# The table of the issue, written out by hand (not derived from sessions.services.TRANSITIONS).
LEGAL = {
    ("pending", "queued"), ("pending", "cancelled"),
    ("queued", "running"), ("queued", "cancelled"), ("queued", "failed"),
    ("running", "paused"), ("running", "completed"), ("running", "failed"), ("running", "cancelled"),
    ("running", "queued"),
    ("paused", "queued"), ("paused", "cancelled"),
    # A failed training is resumed from its last good checkpoint (a new attempt).
    ("failed", "queued"),
}
ALL_MOVES = [(a, b) for a in S.values for b in S.values]
ILLEGAL = sorted(set(ALL_MOVES) - LEGAL)


@pytest.mark.parametrize(("current", "to"), sorted(LEGAL))
def test_session_transition_makes_every_legal_move(make_session, current, to):
    session = make_session(current)

    session_transition(session=session, to=to)

    assert session.status == to
    assert StrategySession.objects.get(pk=session.pk).status == to


@pytest.mark.parametrize(("current", "to"), ILLEGAL)
def test_session_transition_refuses_every_illegal_move(make_session, current, to):
    session = make_session(current)

    with pytest.raises(IllegalTransition) as raised:
        session_transition(session=session, to=to)

    assert str(raised.value) == ILLEGAL_TRANSITION.format(pk=session.pk, current=current, to=to)
    assert StrategySession.objects.get(pk=session.pk).status == current


def test_illegal_transition_is_a_value_error_naming_both_states(make_session):
    session = make_session(S.COMPLETED)

    with pytest.raises(ValueError, match=r"'completed' to 'running'"):
        session_transition(session=session, to=S.RUNNING)


def test_session_transition_refuses_an_unknown_status(make_session):
    session = make_session(S.PENDING)

    with pytest.raises(IllegalTransition, match="'pending' to 'finished'"):
        session_transition(session=session, to="finished")


def test_session_transition_sets_started_at_on_the_first_run_only(make_session):
    session = make_session(S.QUEUED)
    assert session.started_at is None

    before = timezone.now()
    session_transition(session=session, to=S.RUNNING)
    first_start = session.started_at
    assert before <= first_start <= timezone.now()

    session_transition(session=session, to=S.PAUSED)
    session_transition(session=session, to=S.QUEUED)
    session_transition(session=session, to=S.RUNNING)
    assert session.started_at == first_start
    assert session.completed_at is None


@pytest.mark.parametrize(
    ("current", "final"), [(S.RUNNING, S.COMPLETED), (S.QUEUED, S.FAILED), (S.PENDING, S.CANCELLED)]
)
def test_session_transition_sets_completed_at_on_final_statuses(make_session, current, final):
    session = make_session(current)

    before = timezone.now()
    session_transition(session=session, to=final)

    assert before <= session.completed_at <= timezone.now()
    assert session.is_final


def test_session_transition_writes_error_and_fields_with_the_move(make_session):
    session = make_session(S.QUEUED)

    session_transition(session=session, to=S.RUNNING, process_id=4242, device="cpu", attempt=F("attempt") + 1)
    assert (session.process_id, session.device, session.attempt) == (4242, "cpu", 1)

    session_transition(session=session, to=S.FAILED, error="worker lost")
    assert session.error == "worker lost"


def test_session_transition_refuses_fields_it_owns(make_session):
    session = make_session(S.QUEUED)

    with pytest.raises(TypeError) as raised:
        session_transition(session=session, to=S.RUNNING, status=S.COMPLETED, started_at=None)
    with pytest.raises(TypeError) as summary:
        session_transition(session=session, to=S.RUNNING, report_summary={"alpha": 1.0})

    assert str(raised.value) == RESERVED_FIELDS.format(fields="started_at, status")
    assert str(summary.value) == RESERVED_FIELDS.format(fields="report_summary")
    assert StrategySession.objects.get(pk=session.pk).status == S.QUEUED


def test_requeue_clears_pause_request_so_the_resumed_run_does_not_pause_again(make_session):
    session = make_session(S.RUNNING)
    StrategySession.objects.filter(pk=session.pk).update(pause_requested=True)  # the user asks to pause
    session.refresh_from_db()
    session_transition(session=session, to=S.PAUSED)
    assert session.pause_requested

    session_transition(session=session, to=S.QUEUED)

    assert not session.pause_requested


def test_of_two_stale_copies_only_the_first_move_wins(make_session):
    session = make_session(S.RUNNING)
    worker_copy = StrategySession.objects.get(pk=session.pk)
    web_copy = StrategySession.objects.get(pk=session.pk)

    session_transition(session=worker_copy, to=S.COMPLETED)
    with pytest.raises(TransitionConflict) as raised:
        session_transition(session=web_copy, to=S.CANCELLED)

    assert str(raised.value) == TRANSITION_CONFLICT.format(
        pk=session.pk, expected="running", to="cancelled", current="completed"
    )
    assert StrategySession.objects.get(pk=session.pk).status == S.COMPLETED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_processes_racing_to_start_a_session_one_wins(make_session):
    # Real concurrency needs real row locks and separate connections; SQLite's in-memory test database
    # shares one cache between threads and reports "table is locked" instead of waiting.
    assert connection.vendor == "postgresql", "needs PostgreSQL: run with DATABASE_URL, or -m 'not postgres'"
    session = make_session(S.QUEUED)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker(process_id: int) -> None:
        copy = StrategySession.objects.get(pk=session.pk)
        barrier.wait()
        try:
            session_transition(session=copy, to=S.RUNNING, process_id=process_id)
            outcomes.append("moved")
        except TransitionConflict:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(pid,)) for pid in (101, 202)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["moved", "refused"]
    session.refresh_from_db()
    assert session.status == S.RUNNING and session.process_id in (101, 202)


def test_a_move_with_a_result_keeps_the_summary_of_its_report(make_session):
    session = make_session(S.RUNNING)
    report = {"metrics": {"sharpe": 1.5}, "benchmark_metrics": {"sharpe": 0.5}, "alpha": 0.02, "beta": 0.9,
              "equity_curve": [{"date": "2024-01-02", "value": 1.0, "benchmark": 1.0}], "trades": []}

    session_transition(session=session, to=S.COMPLETED, result_data={"best_epoch": 3, "report": report})

    stored = StrategySession.objects.get(pk=session.pk)
    assert stored.report_summary == {"metrics": {"sharpe": 1.5}, "benchmark_metrics": {"sharpe": 0.5},
                                     "alpha": 0.02, "beta": 0.9}
    assert stored.has_report


def test_a_move_with_a_result_without_a_report_has_no_summary(make_session):
    session = make_session(S.RUNNING)

    session_transition(session=session, to=S.PAUSED, result_data={"epochs_done": 2})

    assert StrategySession.objects.get(pk=session.pk).report_summary is None
    assert not session.has_report
