"""The WebSocket stream of a deployment (/ws/deployments/<id>/) through the real ASGI application: the
history, then each new row once in id order, orders again when they change, the status with the
positions, and a resume from the last ids with no gap and no duplicate.

As in the sessions' stream tests, the consumers run in an event loop of their own while their database
reads run in the test's thread, so the rows are committed: transactional tests throughout. The last
test runs a real trading process (a tiny trained policy on a paper replay) while a viewer watches.
"""
import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from sessions import stream
from sessions.consumers import CLOSE_BAD_REQUEST, CLOSE_NOT_AUTHENTICATED, CLOSE_NOT_FOUND
from tests.platform.deployment_helpers import add_event, fill_order, make_deployment, place_order, trade_bar
from tests.platform.stream_helpers import WAIT, cookie_of, opened, run
from trademaster_web.asgi import application
from trading.consumers import NOTHING_TO_RECEIVE
from trading.feeds import DEPLOYMENTS, FILLS, ORDERS
from trading.models import EquityPoint, Fill, Order
from trading.process import TradingProcess
from trading.services import deployment_create, deployment_pause

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_poll")]


class Viewer:
    """What a client holds after the messages it was sent: the latest status, the ids of the rows of
    each feed in the order they came, and each order's latest state (and every state it was sent)."""

    def __init__(self, communicator):
        self.communicator = communicator
        self.status: dict | None = None
        self.statuses = 0
        self.equity: list[int] = []
        self.points: dict[int, dict] = {}
        self.fills: list[int] = []
        self.events: list[int] = []
        self.decisions: list[int] = []
        self.orders: dict[int, dict] = {}
        self.order_states: list[tuple[int, str, float]] = []
        self.first: str | None = None

    def take(self, message: dict) -> None:
        kind = message["type"]
        self.first = self.first or kind
        if kind == "status":
            self.status, self.statuses = message, self.statuses + 1
        elif kind == "equity":
            self.equity += [point["id"] for point in message["points"]]
            self.points.update({point["id"]: point for point in message["points"]})
        elif kind == "order":
            self.orders[message["id"]] = message
            self.order_states.append((message["id"], message["status"], message["filled_quantity"]))
        elif kind == "fill":
            self.fills.append(message["id"])
        elif kind == "event":
            self.events.append(message["id"])
        elif kind == "decision":
            self.decisions.append(message["id"])
        else:
            raise AssertionError(message)

    async def until(self, done) -> None:
        """Take messages until done(self); fails when none comes for WAIT seconds."""
        while not done(self):
            self.take(await self.communicator.receive_json_from(timeout=WAIT))

    async def nothing_more(self) -> None:
        assert await self.communicator.receive_nothing(timeout=0.3)

    def cursor(self) -> str:
        """The URL query a client resumes with: its last ids; orders from before the oldest it holds open."""
        open_ids = [pk for pk, order in self.orders.items() if order["status"] in ("new", "accepted",
                                                                                    "partially_filled")]
        orders_after = min(open_ids) - 1 if open_ids else max(self.orders, default=0)
        return (f"equity_after={max(self.equity, default=0)}&orders_after={orders_after}"
                f"&fills_after={max(self.fills, default=0)}&events_after={max(self.events, default=0)}"
                f"&decisions_after={max(self.decisions, default=0)}")


def db(work):
    return database_sync_to_async(work)()


def record(deployment) -> dict:
    """The deployment's record as a viewer should end up holding it."""
    return {
        "equity": list(EquityPoint.objects.filter(deployment=deployment).order_by("pk").values_list("pk", flat=True)),
        "fills": list(Fill.objects.filter(deployment=deployment).order_by("pk").values_list("pk", flat=True)),
        "events": list(deployment.events.order_by("pk").values_list("pk", flat=True)),
        "decisions": list(deployment.risk_decisions.order_by("pk").values_list("pk", flat=True)),
        "orders": {row["id"]: row for row in ORDERS.rows_after(owner_pk=deployment.pk, after=0, limit=1000)},
    }


def holds(viewer: Viewer, expected: dict, *, last_bar: int) -> bool:
    return (viewer.status is not None and viewer.status["last_bar"] == last_bar
            and sorted(viewer.equity) == expected["equity"] and sorted(viewer.fills) == expected["fills"]
            and sorted(viewer.events) == expected["events"] and sorted(viewer.decisions) == expected["decisions"]
            and {pk: _without_type(o) for pk, o in viewer.orders.items()} == expected["orders"])


def _without_type(message: dict) -> dict:
    return {key: value for key, value in message.items() if key != "type"}


async def refusal(path: str, headers=()) -> tuple[dict, int]:
    communicator = WebsocketCommunicator(application, path, headers=list(headers))
    connected, _ = await communicator.connect(timeout=WAIT)
    assert connected
    error = await communicator.receive_json_from(timeout=WAIT)
    closed = await communicator.receive_output(timeout=WAIT)
    await communicator.disconnect()
    return error, closed["code"]


@pytest.fixture
def deployment(strategy):
    """ada's running deployment after two bars: a filled buy, an open sell, one event."""
    deployment = make_deployment(strategy)
    trade_bar(deployment, bar=0, equity=100_000.0, cash=100_000.0, benchmark=100_000.0)
    fill_order(place_order(deployment, bar=0, symbol="A0", quantity=2.0), price=12.5)
    trade_bar(deployment, bar=1, equity=100_100.0, cash=99_974.5, benchmark=99_900.0, positions={"A0": 2.0})
    place_order(deployment, bar=1, symbol="A1", side="sell", quantity=1.5)
    return deployment


# --------------------------------------------------------------------------------------------- refusals

def test_the_stream_refuses_anonymous_clients_someone_elses_deployment_and_bad_cursors(deployment, other_user, user):
    linus, ada = cookie_of(other_user), cookie_of(user)

    async def scenario():
        assert (await refusal(f"/ws/deployments/{deployment.pk}/"))[1] == CLOSE_NOT_AUTHENTICATED
        error, code = await refusal(f"/ws/deployments/{deployment.pk}/", linus)
        assert code == CLOSE_NOT_FOUND and error == {"type": "error", "error": f"no deployment {deployment.pk}"}
        assert (await refusal("/ws/deployments/99999999999999999999/", ada))[1] == CLOSE_NOT_FOUND
        for query, name in (("fills_after=-1", "fills"), ("equity_after=x", "equity"),
                            ("orders_after=99999999999999999999", "orders")):
            error, code = await refusal(f"/ws/deployments/{deployment.pk}/?{query}", ada)
            assert code == CLOSE_BAD_REQUEST and error["error"].startswith(f"{name}_after must be a row id")

    run(scenario)


def test_staff_may_watch_someone_elses_deployment_and_the_stream_takes_no_messages(deployment, staff_user):
    grace = cookie_of(staff_user)

    async def scenario():
        communicator = await opened(f"/ws/deployments/{deployment.pk}/", grace)
        viewer = Viewer(communicator)
        expected = await db(lambda: record(deployment))
        await viewer.until(lambda v: holds(v, expected, last_bar=1))
        await communicator.send_json_to({"after": 0})
        assert await communicator.receive_json_from(timeout=WAIT) == {"type": "error", "error": NOTHING_TO_RECEIVE}
        await communicator.disconnect()

    run(scenario)


# ------------------------------------------------------------------------------------ history then live

def test_a_viewer_gets_the_status_then_the_history_then_each_new_row_once_in_order(deployment, user):
    ada = cookie_of(user)
    async def scenario():
        communicator = await opened(f"/ws/deployments/{deployment.pk}/", ada)
        viewer = Viewer(communicator)
        expected = await db(lambda: record(deployment))
        await viewer.until(lambda v: holds(v, expected, last_bar=1))
        assert viewer.first == "status"
        status = viewer.status
        assert (status["status"], status["equity"], status["cash"], status["bars_done"]) == (
            "running", 100_100.0, 99_974.5, 2)
        assert status["pnl"] == pytest.approx(100.0) and status["drawdown"] == 0.0
        assert status["positions"] == [{"symbol": "A0", "quantity": 2.0, "last_price": 10.0, "value": 20.0}]
        assert [o["side"] for o in status["open_orders"]] == ["sell"]
        assert viewer.points[viewer.equity[1]]["benchmark"] == 99_900.0

        # A bar: the open sell fills, a new point, a new position, an event.
        sell = await db(lambda: Order.objects.get(deployment=deployment, side="sell"))
        await db(lambda: fill_order(sell, price=13.0))
        await db(lambda: trade_bar(deployment, bar=2, equity=100_150.0, cash=99_993.5, benchmark=99_950.0,
                                   positions={"A0": 2.0, "A1": -1.5}, price=13.0))
        await db(lambda: add_event(deployment, "running -> halted: risk", severity="critical"))
        expected = await db(lambda: record(deployment))
        await viewer.until(lambda v: holds(v, expected, last_bar=2))

        assert viewer.equity == expected["equity"] and viewer.fills == expected["fills"]  # in id order, once
        assert viewer.events == expected["events"]
        assert viewer.orders[sell.pk]["status"] == "filled" and viewer.orders[sell.pk]["average_price"] == 13.0
        assert viewer.status["open_orders"] == []
        assert {p["symbol"]: p["value"] for p in viewer.status["positions"]} == {"A0": 26.0, "A1": -19.5}
        await viewer.nothing_more()
        assert len(viewer.order_states) == len(set(viewer.order_states))  # no state of an order twice
        await communicator.disconnect()

    run(scenario)


def test_an_order_is_sent_again_each_time_it_changes_and_only_then(deployment, user):
    ada = cookie_of(user)
    async def scenario():
        communicator = await opened(f"/ws/deployments/{deployment.pk}/", ada)
        viewer = Viewer(communicator)
        expected = await db(lambda: record(deployment))
        await viewer.until(lambda v: holds(v, expected, last_bar=1))
        sell = await db(lambda: Order.objects.get(deployment=deployment, side="sell"))

        await db(lambda: Order.objects.filter(pk=sell.pk).update(status="partially_filled", filled_quantity=0.5,
                                                                 average_price=13.0))
        await viewer.until(lambda v: v.orders[sell.pk]["filled_quantity"] == 0.5)
        # Changes of other things (a heartbeat, a bar) send no order again.
        await db(lambda: trade_bar(deployment, bar=2, equity=100_150.0, cash=99_993.5, benchmark=99_950.0))
        await viewer.until(lambda v: v.status["last_bar"] == 2)
        await db(lambda: Order.objects.filter(pk=sell.pk).update(status="cancelled", reason="cancelled on request"))
        await viewer.until(lambda v: v.orders[sell.pk]["status"] == "cancelled")
        await viewer.nothing_more()

        assert [state for state in viewer.order_states if state[0] == sell.pk] == [
            (sell.pk, "accepted", 0.0), (sell.pk, "partially_filled", 0.5), (sell.pk, "cancelled", 0.5)]
        assert viewer.orders[sell.pk]["reason"] == "cancelled on request"
        await communicator.disconnect()

    run(scenario)


def test_a_reconnect_with_the_last_ids_resumes_without_gaps_or_duplicates(deployment, user):
    ada = cookie_of(user)
    async def scenario():
        first = Viewer(await opened(f"/ws/deployments/{deployment.pk}/", ada))
        expected = await db(lambda: record(deployment))
        await first.until(lambda v: holds(v, expected, last_bar=1))
        await first.communicator.disconnect()
        assert stream.tails_running() == 0

        # While nobody watches: the open sell fills, two bars, an event.
        sell = await db(lambda: Order.objects.get(deployment=deployment, side="sell"))
        await db(lambda: fill_order(sell, price=13.0))
        for bar in (2, 3):
            await db(lambda bar=bar: trade_bar(deployment, bar=bar, equity=100_000.0 + bar, cash=99_000.0,
                                               benchmark=100_000.0))
        await db(lambda: add_event(deployment, "paused by ada"))

        second = Viewer(await opened(f"/ws/deployments/{deployment.pk}/?{first.cursor()}", ada))
        expected = await db(lambda: record(deployment))
        await second.until(lambda v: v.status is not None and len(first.equity + v.equity) == len(expected["equity"])
                           and len(first.fills + v.fills) == len(expected["fills"])
                           and len(first.events + v.events) == len(expected["events"])
                           and sell.pk in v.orders)
        await second.nothing_more()

        assert first.equity + second.equity == expected["equity"]
        assert first.fills + second.fills == expected["fills"]
        assert first.events + second.events == expected["events"]
        # Orders from before the oldest one the client held open: that one, filled meanwhile, and none older.
        assert list(second.orders) == [sell.pk] and second.orders[sell.pk]["status"] == "filled"
        await second.communicator.disconnect()

    run(scenario)


def test_all_viewers_of_a_deployment_share_one_tail_and_a_lost_message_is_read_from_the_record(
        deployment, user, staff_user):
    ada, grace = cookie_of(user), cookie_of(staff_user)

    async def scenario():
        one = Viewer(await opened(f"/ws/deployments/{deployment.pk}/", ada))
        two = Viewer(await opened(f"/ws/deployments/{deployment.pk}/?fills_after=0", grace))
        expected = await db(lambda: record(deployment))
        for viewer in (one, two):
            await viewer.until(lambda v: holds(v, expected, last_bar=1))
        assert stream.tails_running() == 1

        # A tail message that starts above what the viewers have (the one before it was lost): each
        # reads the fills between from the record first.
        sell = await db(lambda: Order.objects.get(deployment=deployment, side="sell"))
        missed = await db(lambda: fill_order(sell, price=13.0))
        event = {"type": "stream.rows", "feed": "fills", "after": missed.pk, "rows": []}
        await get_channel_layer().group_send(DEPLOYMENTS.group(deployment.pk), event)
        for viewer in (one, two):
            await viewer.until(lambda v: missed.pk in v.fills)
            assert viewer.fills == expected["fills"] + [missed.pk]

        await one.communicator.disconnect()
        assert stream.tails_running() == 1
        await two.communicator.disconnect()
        assert stream.tails_running() == 0

    run(scenario)


def test_the_feeds_read_a_deployments_rows_only(deployment, strategy):
    other = make_deployment(strategy)
    fill_order(place_order(other, bar=0), price=1.0)
    assert [row["id"] for row in FILLS.rows_after(owner_pk=other.pk, after=0)] == [other.fills.get().pk]
    assert FILLS.last_id(owner_pk=deployment.pk) == deployment.fills.get().pk


# ------------------------------------------------------------------------------ a real trading process

def test_a_viewer_follows_a_trading_process_bar_by_bar_and_pausing_stops_the_bars(user, trained_session):
    """Orders decided at one bar fill at the next (next_open): every order changes after it is written,
    and the viewer ends with each one's state as recorded."""
    ada = cookie_of(user)
    deployment = deployment_create(session=trained_session, user=user, fill_model="next_open")
    process = TradingProcess()

    def advance(bars: int):
        for _ in range(10_000):
            process.tick()
            deployment.refresh_from_db()
            if deployment.bars_done >= bars:
                return
        raise AssertionError(f"deployment {deployment.pk} stayed at {deployment.bars_done} bars")

    async def scenario():
        viewer = Viewer(await opened(f"/ws/deployments/{deployment.pk}/", ada))
        await viewer.until(lambda v: v.status is not None and v.status["status"] == "pending")
        for bars in (3, 8):
            await db(lambda bars=bars: advance(bars))
            expected = await db(lambda: record(deployment))
            await viewer.until(lambda v, e=expected, b=deployment.last_bar: holds(v, e, last_bar=b))
            positions = await db(lambda: list(deployment.positions.order_by("symbol")
                                              .values_list("symbol", "quantity")))
            assert [(p["symbol"], p["quantity"]) for p in viewer.status["positions"]] == positions
            assert viewer.status["equity"] == viewer.points[viewer.equity[-1]]["equity"]
        assert len(viewer.equity) == 8 and any(state[1] == "filled" for state in viewer.order_states)
        assert any(state[1] == "accepted" for state in viewer.order_states)
        assert len(viewer.decisions) == len(viewer.orders)  # the risk checks' verdict on each order, live

        await db(lambda: deployment_pause(deployment=deployment, user=user))
        await db(lambda: [process.tick() for _ in range(20)])
        await viewer.until(lambda v: v.status["status"] == "paused")
        expected = await db(lambda: record(deployment))
        assert len(expected["equity"]) == 8
        await viewer.until(lambda v: holds(v, expected, last_bar=deployment.last_bar))
        await viewer.communicator.disconnect()
        await db(process.release_all)

    run(scenario)
