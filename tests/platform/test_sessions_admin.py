"""The admin's session actions go through the services, as the API and the pages do."""
import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from sessions.admin import ACTION_DONE, ACTION_REFUSED
from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.services import ILLEGAL_TRANSITION, session_start, session_submit

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:training_sessions_strategysession_changelist")


@pytest.fixture
def sessions(tiny_strategy, user, settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "MAX_SESSIONS_PER_USER": 10}
    queued = session_submit(strategy=tiny_strategy, user=user)
    running = session_submit(strategy=tiny_strategy, user=user)
    return queued, session_start(session=running, process_id=1, host="worker")


def act(admin_client, action: str, *sessions: StrategySession) -> list[str]:
    response = admin_client.post(CHANGELIST, {"action": action, "_selected_action": [s.pk for s in sessions]})
    assert response.status_code == 302
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_stop_cancels_a_queued_session_and_asks_a_running_one_to_stop(admin_client, sessions):
    queued, running = sessions

    messages = act(admin_client, "stop_sessions", queued, running)

    queued.refresh_from_db(), running.refresh_from_db()
    assert queued.status == S.CANCELLED
    assert (running.status, running.cancel_requested) == (S.RUNNING, True)
    assert messages == [ACTION_DONE.format(action="Stopped or asked to stop", ids=f"{queued.pk}, {running.pk}")]


def test_requeue_takes_a_running_session_back_and_reports_what_it_cannot_move(admin_client, sessions):
    queued, running = sessions
    act(admin_client, "stop_sessions", queued)

    messages = act(admin_client, "requeue_sessions", queued, running)

    running.refresh_from_db()
    assert (running.status, running.attempt, running.error) == (S.QUEUED, 2, "requeued by admin from the admin")
    refusal = ILLEGAL_TRANSITION.format(pk=queued.pk, current="cancelled", to="queued")
    assert ACTION_REFUSED.format(pk=queued.pk, error=refusal) in messages
    assert ACTION_DONE.format(action="Requeued", ids=str(running.pk)) in messages
