"""Deleting a strategy: refused (409) while one of its sessions is not over, since its worker would
train on for a strategy that is gone; otherwise its sessions' run directories go with it."""
import pytest

from common.errors import Conflict
from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.services import session_start, session_submit, session_transition
from sessions.services.actions import STRATEGY_HAS_ACTIVE_SESSIONS
from strategies.models import Strategy
from strategies.services import strategy_delete
from tests.platform.test_api import error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def sessions(tiny_strategy, user, runs_dir):
    """A running and a queued session of tiny_strategy, each with a run directory."""
    running = session_start(session=session_submit(strategy=tiny_strategy, user=user, enqueue=False),
                            process_id=4242, host="test-host")
    queued = session_submit(strategy=tiny_strategy, user=user, enqueue=False)
    for session in (running, queued):
        (runs_dir / str(session.pk)).mkdir(parents=True)
    return running, queued


def test_a_strategy_with_a_running_or_queued_session_is_not_deleted(tiny_strategy, user, sessions, runs_dir):
    running, queued = sessions

    with pytest.raises(Conflict) as refused:
        strategy_delete(strategy=tiny_strategy, user=user)

    assert str(refused.value) == STRATEGY_HAS_ACTIVE_SESSIONS.format(pk=tiny_strategy.pk,
                                                                     ids=f"{running.pk}, {queued.pk}")
    assert Strategy.objects.filter(pk=tiny_strategy.pk).exists() and StrategySession.objects.count() == 2
    assert (runs_dir / str(running.pk)).is_dir()


def test_the_api_answers_409_naming_the_sessions(client, tiny_strategy, user, bearer, sessions):
    running, queued = sessions

    response = client.delete(f"/api/strategies/{tiny_strategy.pk}", headers=bearer(user))

    error = error_of(response, 409, "conflict")
    assert error["message"] == STRATEGY_HAS_ACTIVE_SESSIONS.format(pk=tiny_strategy.pk,
                                                                   ids=f"{running.pk}, {queued.pk}")


def test_a_strategy_whose_sessions_are_over_is_deleted_with_their_run_directories(
    tiny_strategy, make_strategy, user, sessions, runs_dir, django_capture_on_commit_callbacks
):
    running, queued = sessions
    session_transition(session=running, to=S.COMPLETED)
    session_transition(session=queued, to=S.CANCELLED)
    other = session_submit(strategy=make_strategy(user, name="other"), user=user, enqueue=False)
    (runs_dir / str(other.pk)).mkdir()

    with django_capture_on_commit_callbacks(execute=True):
        strategy_delete(strategy=tiny_strategy, user=user)

    assert not Strategy.objects.filter(pk=tiny_strategy.pk).exists()
    assert not (runs_dir / str(running.pk)).exists() and not (runs_dir / str(queued.pk)).exists()
    assert (runs_dir / str(other.pk)).is_dir()  # another strategy's


def test_run_directories_are_removed_only_once_the_deletion_commits(
    tiny_strategy, user, sessions, runs_dir, django_capture_on_commit_callbacks
):
    running, queued = sessions
    session_transition(session=running, to=S.COMPLETED)
    session_transition(session=queued, to=S.CANCELLED)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        strategy_delete(strategy=tiny_strategy, user=user)

    assert len(callbacks) == 1  # removed only once the deletion commits
    assert (runs_dir / str(running.pk)).is_dir()
