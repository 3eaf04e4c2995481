"""A session's alerts on its WebSocket stream (/ws/sessions/<id>/): the stored ones on connect, then
each new one once. Transactional, as test_stream_consumer.py explains: the consumers read from
another thread."""
import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from sessions import alerts, stream
from sessions.models import AlertKind as K
from sessions.models import SessionStatus as S
from tests.platform.stream_helpers import WAIT, cookie_of, opened, run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_poll")]

ALERT_KEYS = {"type", "id", "kind", "severity", "message", "epoch", "value", "created_at"}


@pytest.fixture
def session(make_session):
    return make_session(S.RUNNING, progress_total=10)


async def next_alerts(communicator, count: int) -> list[dict]:
    """The next `count` alert messages (other messages skipped); fails after WAIT without one."""
    got = []
    while len(got) < count:
        message = await communicator.receive_json_from(timeout=WAIT)
        if message["type"] == "alert":
            got.append(message)
    return got


async def no_more_alerts(communicator, seconds: float = 0.3) -> None:
    while not await communicator.receive_nothing(timeout=seconds):
        message = await communicator.receive_json_from(timeout=WAIT)
        assert message["type"] != "alert", message


def test_a_viewer_gets_the_existing_alerts_on_connect_then_each_new_one_once(session, user):
    stored = [
        alerts.alert_record(session=session, kind=K.LOSS_NAN, epoch=2, message="train/loss is NaN at epoch 2"),
        alerts.alert_record(session=session, kind=K.RESOURCE_LIMIT, message="memory", value=15_000.0),
    ]
    headers = cookie_of(user)

    async def scenario():
        # No ?after: alerts come whatever the metric cursor.
        communicator = await opened(f"/ws/sessions/{session.pk}/", headers)
        assert (await communicator.receive_json_from(timeout=WAIT))["type"] == "status"
        first = await next_alerts(communicator, 2)
        assert [alert["id"] for alert in first] == [alert.pk for alert in stored]
        assert set(first[0]) == ALERT_KEYS
        assert (first[0]["kind"], first[0]["severity"], first[0]["epoch"], first[0]["value"]) == (
            "loss_nan", "critical", 2, None)
        assert (first[1]["kind"], first[1]["severity"], first[1]["epoch"], first[1]["value"]) == (
            "resource_limit", "warning", None, 15_000.0)

        failed = await database_sync_to_async(alerts.alerts_session_failed)(
            session=session, error="Traceback ...\nValueError: the data ran out"
        )
        [live] = await next_alerts(communicator, 1)
        assert (live["id"], live["kind"], live["severity"], live["message"]) == (
            failed.pk, "session_failed", "critical", "the data ran out")
        assert live["created_at"] == failed.created_at.isoformat()
        await no_more_alerts(communicator)
        await communicator.disconnect()

    run(scenario)


def test_a_second_viewer_gets_the_stored_alerts_and_no_duplicates_from_the_tail(session, user):
    headers = cookie_of(user)

    async def scenario():
        first = await opened(f"/ws/sessions/{session.pk}/", headers)
        await database_sync_to_async(alerts.alert_record)(session=session, kind=K.LOSS_NAN, epoch=1, message="a")
        [seen] = await next_alerts(first, 1)
        second = await opened(f"/ws/sessions/{session.pk}/", headers)
        assert [alert["id"] for alert in await next_alerts(second, 1)] == [seen["id"]]
        later = await database_sync_to_async(alerts.alert_record)(
            session=session, kind=K.LOSS_NAN, epoch=2, message="b"
        )
        for viewer in (first, second):
            assert [alert["id"] for alert in await next_alerts(viewer, 1)] == [later.pk]
            await no_more_alerts(viewer)
            await viewer.disconnect()

    run(scenario)


def test_a_viewer_reads_from_the_record_the_alerts_a_lost_message_carried(session, user, settings):
    # A tail that reads once, then sleeps through the test: only the injected message brings news.
    settings.TRADEMASTER = {**settings.TRADEMASTER, "STREAM_STATUS_POLL_SECONDS": 60}
    headers = cookie_of(user)

    async def scenario():
        communicator = await opened(f"/ws/sessions/{session.pk}/", headers)
        assert (await communicator.receive_json_from(timeout=WAIT))["type"] == "status"
        await asyncio.sleep(0.2)  # the tail's first read is done
        missed = await database_sync_to_async(alerts.alert_record)(session=session, kind=K.LOSS_NAN, epoch=3,
                                                                    message="missed")
        event = {"type": "stream.rows", "feed": "alerts", "after": missed.pk, "rows": []}
        await get_channel_layer().group_send(stream.group_name(session.pk), event)
        assert [alert["id"] for alert in await next_alerts(communicator, 1)] == [missed.pk]
        await communicator.disconnect()

    run(scenario)
