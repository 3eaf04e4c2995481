"""WebSocket /ws/deployments/<id>/: a deployment's equity, orders, fills, events and risk decisions, and
where it stands, live.

Authentication and refusals are the sessions' stream's (sessions.consumers): the login session or an
API token; a refused connection is accepted, sent one {"type": "error", "error"} and closed with 4401
(not authenticated), 4404 (no such deployment among those the user may see: someone else's is "not
found" too) or 4400 (bad input).

Messages to the client (JSON; trading.feeds names the fields):
  {"type": "status", "status", "error", "mode", "cash", "equity", "pnl", "pnl_today", "drawdown",
   "last_bar", "last_bar_time", "bars_done", "heartbeat_at", ..., "positions": [...],
   "open_orders": [...]}                              on connect, then on every change
  {"type": "equity", "points": [{"id", "bar_index", "time", "equity", "cash", "benchmark"}, ...]}
  {"type": "order", "id", "symbol", "side", "quantity", "status", "filled_quantity", ...}
  {"type": "fill", "id", "order_id", "symbol", "side", "quantity", "price", "fee", "time", ...}
  {"type": "event", "id", "severity", "message", "created_at"}
  {"type": "decision", "id", "client_order_id", "bar_index", "symbol", "side", "quantity", "approved",
   "code", "message", "values", "created_at"}         the risk checks' verdict on an order
  {"type": "error", "error"}

History then live: each feed starts after the id the client gives as ?<feed>_after=<id> in the URL
(equity_after, orders_after, fills_after, events_after, decisions_after; 0, the default, for the whole
history): the stored rows above it first, then each new one, in id order. Equity points, fills, events
and decisions come each once: to resume after a reconnect, pass the last id received of each. Orders
come as they are when read, and an order already sent comes again when it changes (trading.feeds), so
an order message is the order's state to keep, replacing any earlier one of that id; the same state of
an order is never sent twice on one connection. A client resumes orders after the order before the
oldest one it holds as open (after the last one when it holds none open): the server does not know which
orders a client holds, and every order that may have changed since is then sent again.

The cursor rule is the sessions' one, per feed: a row at or below the viewer's cursor is never sent
again; a tail message that starts above it is preceded by the rows between, read from the record.
"""
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from common.errors import NotFound
from sessions.consumers import (
    CLOSE_BAD_REQUEST,
    CLOSE_NOT_AUTHENTICATED,
    CLOSE_NOT_FOUND,
    NOT_AUTHENTICATED,
    authenticate,
    parse_after,
)
from sessions.feeds import PAGE_SIZE, Feed
from trading.feeds import DEPLOYMENTS, FEEDS, OPEN_STATUSES, ORDERS, deployment_state
from trading.selectors import DEPLOYMENT_NOT_FOUND, deployment_get

BAD_AFTER = "{name}_after must be a row id (an integer >= 0), not {value!r}"
NOTHING_TO_RECEIVE = "this stream takes no messages: give ?<feed>_after=<id> in the URL"


@database_sync_to_async
def _visible(*, user, pk: int) -> bool:
    try:
        deployment_get(user=user, pk=pk)
    except NotFound:
        return False
    return True


def cursors_of(query_string: bytes) -> dict[str, int]:
    """Where each feed starts: ?<feed>_after=<id>, 0 when not given. ValueError for a bad one."""
    query = parse_qs(query_string.decode("latin1"))
    cursors = {}
    for name in FEEDS:
        values = query.get(f"{name}_after")
        message = BAD_AFTER.replace("{name}", name)
        cursors[name] = parse_after(values[-1], message) if values else 0
    return cursors


class DeploymentStreamConsumer(AsyncJsonWebsocketConsumer):
    deployment_pk: int | None = None
    last_status: dict | None = None

    async def connect(self):
        # Per feed, the last row id sent to this viewer; None until the feed starts.
        self.cursors: dict[str, int | None] = dict.fromkeys(FEEDS)
        # The orders sent to this viewer while open, as sent: the ones whose change it must be sent.
        self.open_orders: dict[int, dict] = {}
        await self.accept()
        user = await authenticate(self.scope)
        if user is None:
            return await self._refuse(NOT_AUTHENTICATED, CLOSE_NOT_AUTHENTICATED)
        pk = int(self.scope["url_route"]["kwargs"]["pk"])
        if not await _visible(user=user, pk=pk):
            return await self._refuse(DEPLOYMENT_NOT_FOUND.format(pk=pk), CLOSE_NOT_FOUND)
        try:
            starts = cursors_of(self.scope.get("query_string", b""))
        except ValueError as error:
            return await self._refuse(str(error), CLOSE_BAD_REQUEST)

        # Join the group before reading anything: a row committed while the backfill runs then arrives
        # as a group message, queued until the backfill is sent, and is dropped if it was in it.
        self.deployment_pk = pk
        await self.channel_layer.group_add(DEPLOYMENTS.group(pk), self.channel_name)
        await DEPLOYMENTS.watch(pk)
        await self.stream_status({"status": await database_sync_to_async(deployment_state)(pk)})
        for name, feed in FEEDS.items():
            self.cursors[name] = starts[name]
            await self._send_stored(feed, upto=None)

    async def disconnect(self, code):
        if self.deployment_pk is None:
            return
        await self.channel_layer.group_discard(DEPLOYMENTS.group(self.deployment_pk), self.channel_name)
        DEPLOYMENTS.unwatch(self.deployment_pk)
        self.deployment_pk = None

    async def receive_json(self, content, **kwargs):
        if self.deployment_pk is not None:
            await self.send_json({"type": "error", "error": NOTHING_TO_RECEIVE})

    # Group messages from the deployment's tail (sessions.stream) -----------------------------------

    async def stream_rows(self, event):
        feed = FEEDS[event["feed"]]
        if self.cursors[feed.name] is None:
            return
        if event["after"] > self.cursors[feed.name]:
            # This message starts above what this viewer has: fetch the range between from the record.
            await self._send_stored(feed, upto=event["after"])
        await self._send(feed, [row for row in event["rows"] if row["id"] > self.cursors[feed.name]])

    async def stream_status(self, event):
        status = event["status"]
        if status is None or status == self.last_status:
            return
        self.last_status = status
        await self.send_json(status)
        await self._send_changed_orders(status["open_orders"])

    # -----------------------------------------------------------------------------------------------

    async def _send_changed_orders(self, open_now: list[dict]) -> None:
        """Send the new state of each order this viewer has as open that `open_now` (the status's open
        orders) shows changed or no longer open, read again: the status may be older than what the
        viewer was sent, and a closed order's final state is not in it."""
        listed = {row["id"]: row for row in open_now}
        stale = [pk for pk, row in self.open_orders.items() if listed.get(pk) != row]
        if not stale:
            return
        rows = await database_sync_to_async(ORDERS.rows_of)(owner_pk=self.deployment_pk, ids=stale)
        changed = [row for row in rows if row != self.open_orders[row["id"]]]
        for message in ORDERS.messages(changed):
            await self.send_json(message)
        self._track(changed)

    def _track(self, orders: list[dict]) -> None:
        for row in orders:
            if row["status"] in OPEN_STATUSES:
                self.open_orders[row["id"]] = row
            else:
                self.open_orders.pop(row["id"], None)

    async def _send_stored(self, feed: Feed, *, upto: int | None) -> None:
        """Send the stored rows of `feed` above its cursor (up to `upto`), a page at a time."""
        while True:
            rows = await database_sync_to_async(feed.rows_after)(
                owner_pk=self.deployment_pk, after=self.cursors[feed.name], upto=upto
            )
            await self._send(feed, rows)
            if len(rows) < PAGE_SIZE:
                return

    async def _send(self, feed: Feed, rows: list[dict]) -> None:
        for message in feed.messages(rows):
            await self.send_json(message)
        if rows:
            self.cursors[feed.name] = rows[-1]["id"]
            if feed is ORDERS:
                self._track(rows)

    async def _refuse(self, error: str, code: int) -> None:
        await self.send_json({"type": "error", "error": error})
        await self.close(code=code)
