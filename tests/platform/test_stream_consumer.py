"""The WebSocket stream of a session (/ws/sessions/<id>/) through the real ASGI application.

The consumers run in an event loop of their own (async_to_sync) while their database reads run in the
test's thread (database_sync_to_async is thread-sensitive), so the rows must be committed:
transactional tests throughout.
"""
import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction

from sessions import stream
from sessions.consumers import (
    BAD_RESOURCES_AFTER,
    CLOSE_BAD_REQUEST,
    CLOSE_NOT_AUTHENTICATED,
    CLOSE_NOT_FOUND,
    NOT_AUTHENTICATED,
    UNKNOWN_MESSAGE,
)
from sessions.feeds import RESOURCES
from sessions.models import PerformanceMetric, ResourceUsage
from sessions.models import SessionStatus as S
from sessions.services import session_transition
from tests.platform.stream_helpers import WAIT, cookie_of, opened, run
from trademaster_web.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_poll")]

@pytest.fixture
def session(make_session):
    return make_session(S.RUNNING, progress_total=10)


def token_of(bearer, user) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", bearer(user)["Authorization"].encode())]


def add_points(session, *, epochs: range, per_epoch: int = 3) -> list[int]:
    """Rows as the worker writes them (one transaction an epoch); their ids in order."""
    ids = []
    for epoch in epochs:
        with transaction.atomic():
            rows = PerformanceMetric.objects.bulk_create(
                PerformanceMetric(session=session, metric_type=f"train/m{i}", value=epoch + i / 10, epoch=epoch)
                for i in range(per_epoch)
            )
        ids += [row.pk for row in rows]
    return ids


async def refusal(path: str, headers=()) -> tuple[dict, int]:
    """The error message and close code of a connection the server refuses."""
    communicator = WebsocketCommunicator(application, path, headers=list(headers))
    connected, _ = await communicator.connect(timeout=WAIT)
    assert connected  # refusals are accepted first, so that the client can read why
    error = await communicator.receive_json_from(timeout=WAIT)
    closed = await communicator.receive_output(timeout=WAIT)
    await communicator.disconnect()
    assert closed["type"] == "websocket.close"
    return error, closed["code"]


async def point_ids(communicator, count: int) -> list[int]:
    """The ids of the next `count` points (other messages skipped); fails after WAIT without one."""
    ids = []
    while len(ids) < count:
        message = await communicator.receive_json_from(timeout=WAIT)
        if message["type"] == "metrics":
            ids += [point["id"] for point in message["points"]]
    return ids


async def no_more_points(communicator, seconds: float = 0.3) -> None:
    # receive_nothing rather than a receive that times out: a timeout cancels the application.
    while not await communicator.receive_nothing(timeout=seconds):
        message = await communicator.receive_json_from(timeout=WAIT)
        assert message["type"] != "metrics", message


def test_stream_refuses_an_anonymous_client_with_4401(session):
    async def scenario():
        error, code = await refusal(f"/ws/sessions/{session.pk}/")
        assert (error, code) == ({"type": "error", "error": NOT_AUTHENTICATED}, CLOSE_NOT_AUTHENTICATED)

    run(scenario)


def test_stream_refuses_an_unknown_token_with_4401(session):
    async def scenario():
        _, code = await refusal(f"/ws/sessions/{session.pk}/", [(b"authorization", b"Bearer not-a-token")])
        assert code == CLOSE_NOT_AUTHENTICATED

    run(scenario)


def test_stream_shows_someone_elses_session_as_not_found(session, other_user):
    headers = cookie_of(other_user)

    async def scenario():
        error, code = await refusal(f"/ws/sessions/{session.pk}/", headers)
        assert (error["error"], code) == (f"no session {session.pk}", CLOSE_NOT_FOUND)
        _, code = await refusal("/ws/sessions/999999/", headers)
        assert code == CLOSE_NOT_FOUND

    run(scenario)


def test_stream_refuses_a_bad_after_with_4400(session, user):
    headers = cookie_of(user)

    async def scenario():
        _, code = await refusal(f"/ws/sessions/{session.pk}/?after=-1", headers)
        assert code == CLOSE_BAD_REQUEST

    run(scenario)


def test_stream_refuses_a_bad_resources_after_by_name(session, user):
    headers = cookie_of(user)

    async def scenario():
        error, code = await refusal(f"/ws/sessions/{session.pk}/?after=0&resources_after=x", headers)
        assert (error["error"], code) == (BAD_RESOURCES_AFTER.format(value="x"), CLOSE_BAD_REQUEST)

    run(scenario)


def test_stream_refuses_a_page_of_another_site(session, user):
    headers = cookie_of(user) + [(b"origin", b"https://evil.example")]

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/sessions/{session.pk}/", headers=headers)
        connected, _ = await communicator.connect(timeout=WAIT)
        assert not connected
        await communicator.disconnect()

    run(scenario)


def test_stream_by_login_cookie_sends_status_then_points_after_the_given_id(session, user):
    ids = add_points(session, epochs=range(4))
    headers = cookie_of(user)

    async def scenario():
        communicator = await opened(f"/ws/sessions/{session.pk}/?after={ids[4]}", headers)
        status = await communicator.receive_json_from(timeout=WAIT)
        assert status == {"type": "status", "status": S.RUNNING, "progress_epoch": 0, "progress_total": 10}
        message = await communicator.receive_json_from(timeout=WAIT)
        assert message["type"] == "metrics"
        assert [point["id"] for point in message["points"]] == ids[5:]
        assert set(message["points"][0]) == {"id", "epoch", "metric_type", "value", "timestamp"}
        assert message["points"][0]["metric_type"] == "train/m2" and message["points"][0]["epoch"] == 1
        await communicator.disconnect()

    run(scenario)


def test_stream_by_bearer_token_and_after_message(session, user, bearer):
    ids = add_points(session, epochs=range(3))
    headers = token_of(bearer, user)

    async def scenario():
        communicator = await opened(f"/ws/sessions/{session.pk}/", headers)
        assert (await communicator.receive_json_from(timeout=WAIT))["type"] == "status"
        await no_more_points(communicator)  # no cursor yet: no points
        await communicator.send_json_to({"after": ids[1]})
        assert await point_ids(communicator, len(ids) - 2) == ids[2:]
        await communicator.send_json_to({"hello": 1})
        assert await communicator.receive_json_from(timeout=WAIT) == {"type": "error", "error": UNKNOWN_MESSAGE}
        await communicator.disconnect()

    run(scenario)


def test_stream_lets_staff_watch_any_session(session, staff_user):
    headers = cookie_of(staff_user)

    async def scenario():
        communicator = await opened(f"/ws/sessions/{session.pk}/?after=0", headers)
        assert (await communicator.receive_json_from(timeout=WAIT))["type"] == "status"
        await communicator.disconnect()

    run(scenario)


def test_stream_tail_delivers_rows_committed_after_connecting_in_order(session, user):
    before = add_points(session, epochs=range(2))
    headers = cookie_of(user)

    async def scenario():
        communicator = await opened(f"/ws/sessions/{session.pk}/?after=0", headers)
        assert await point_ids(communicator, len(before)) == before
        later = []
        for epoch in range(2, 12):
            later += await database_sync_to_async(add_points)(session, epochs=range(epoch, epoch + 1), per_epoch=5)
            await asyncio.sleep(0.005)
        assert await point_ids(communicator, len(later)) == later
        await no_more_points(communicator)
        await communicator.disconnect()

    run(scenario)


def test_stream_resumes_after_a_reconnect_without_gaps_or_duplicates(session, user):
    headers = cookie_of(user)

    async def scenario():
        first = await opened(f"/ws/sessions/{session.pk}/?after=0", headers)
        written = await database_sync_to_async(add_points)(session, epochs=range(5))
        seen = await point_ids(first, 9)
        await first.disconnect()
        # Nobody watches any more: the tail stops (what a server restart does to all of them).
        assert stream.tails_running() == 0
        written += await database_sync_to_async(add_points)(session, epochs=range(5, 10))

        second = await opened(f"/ws/sessions/{session.pk}/?after={seen[-1]}", headers)
        written += await database_sync_to_async(add_points)(session, epochs=range(10, 12))
        seen += await point_ids(second, len(written) - len(seen))
        assert seen == written
        await no_more_points(second)
        await second.disconnect()

    run(scenario)


def test_stream_runs_one_tail_for_all_viewers_of_a_session(session, user, bearer):
    headers = cookie_of(user)

    async def scenario():
        viewers = [await opened(f"/ws/sessions/{session.pk}/?after=0", headers) for _ in range(5)]
        assert stream.tails_running() == 1
        written = await database_sync_to_async(add_points)(session, epochs=range(3))
        for viewer in viewers:
            assert await point_ids(viewer, len(written)) == written
        for viewer in viewers[:-1]:
            await viewer.disconnect()
        assert stream.tails_running() == 1
        await viewers[-1].disconnect()
        assert stream.tails_running() == 0

    run(scenario)


def test_stream_pushes_status_changes_and_resource_samples(session, user):
    headers = cookie_of(user)

    async def scenario():
        communicator = await opened(f"/ws/sessions/{session.pk}/", headers)
        assert (await communicator.receive_json_from(timeout=WAIT))["status"] == S.RUNNING
        await database_sync_to_async(ResourceUsage.objects.create)(session=session, cpu_percent=50.0, memory_mb=128.0)
        await database_sync_to_async(session_transition)(session=session, to=S.PAUSED)
        got = {}
        while set(got) != {"status", "resource"}:
            message = await communicator.receive_json_from(timeout=WAIT)
            got[message["type"]] = message
        assert got["status"]["status"] == S.PAUSED
        assert (got["resource"]["cpu_percent"], got["resource"]["memory_mb"]) == (50.0, 128.0)
        await communicator.disconnect()

    run(scenario)


def resources(communicator_messages) -> list[int]:
    return [m["id"] for m in communicator_messages if m["type"] == "resource"]


def test_resources_after_sends_the_samples_a_page_lacks_then_each_new_one_once(session, user):
    def sample(cpu):
        return ResourceUsage.objects.create(session=session, cpu_percent=cpu, memory_mb=100.0).pk

    shown = [sample(10.0), sample(20.0)]  # what the page rendered
    missed = sample(30.0)  # committed after the render, before the socket joined the tail
    headers = cookie_of(user)

    async def scenario():
        communicator = await opened(f"/ws/sessions/{session.pk}/?resources_after={shown[-1]}", headers)
        received = []
        while missed not in resources(received):
            received.append(await communicator.receive_json_from(timeout=WAIT))
        # The tail may carry a sample the record already gave (committed while the viewer joined).
        again = await database_sync_to_async(RESOURCES.rows_after)(session_pk=session.pk, after=shown[-1])
        event = {"type": "stream.rows", "feed": "resources", "after": shown[-1], "rows": again}
        await get_channel_layer().group_send(stream.group_name(session.pk), event)
        live = await database_sync_to_async(sample)(40.0)
        while live not in resources(received):
            received.append(await communicator.receive_json_from(timeout=WAIT))
        while not await communicator.receive_nothing(timeout=0.3):
            received.append(await communicator.receive_json_from(timeout=WAIT))

        assert resources(received) == [missed, live]  # none the page had, each once, in order
        await communicator.disconnect()

    run(scenario)


def test_stream_fetches_from_the_database_what_a_lost_message_carried(session, user, settings):
    # A tail that reads once, then sleeps through the test: only the injected message below can bring
    # the new points.
    settings.TRADEMASTER = {**settings.TRADEMASTER, "STREAM_POLL_SECONDS": 60}
    ids = add_points(session, epochs=range(4))
    headers = cookie_of(user)

    async def scenario():
        communicator = await opened(f"/ws/sessions/{session.pk}/?after={ids[2]}", headers)
        assert await point_ids(communicator, len(ids) - 3) == ids[3:]
        await asyncio.sleep(0.2)  # the tail's first read is done
        missed = await database_sync_to_async(add_points)(session, epochs=range(4, 6))
        # A message whose points start after missed[-1], as if the one carrying `missed` had been
        # dropped by a full channel: the viewer reads what it lacks from the record first.
        event = {"type": "stream.rows", "feed": "metrics", "after": missed[-1], "rows": []}
        await get_channel_layer().group_send(stream.group_name(session.pk), event)
        assert await point_ids(communicator, len(missed)) == missed
        await no_more_points(communicator)
        await communicator.disconnect()

    run(scenario)
