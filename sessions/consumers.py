"""WebSocket /ws/sessions/<id>/: a session's metric points, status, resource samples and alerts, live.

Authentication: the login session (cookie) or an API token in the handshake's
`Authorization: Bearer <token>` header. A refused connection is accepted, sent one
{"type": "error", "error": ...} message and closed with a code: 4401 not authenticated, 4404 no such
session among those the user may see (someone else's is "not found" too), 4400 bad input. Accepting
first is deliberate: a browser reports a handshake refused before accept as code 1006 whatever the
reason, so a client could not tell "log in again" from "the network dropped" and would retry forever.

Messages to the client (JSON):
  {"type": "status", "status", "progress_epoch", "progress_total"}   on connect, then on every change
  {"type": "metrics", "points": [{"id", "epoch", "metric_type", "value", "timestamp"}, ...]}
  {"type": "resource", "id", "cpu_percent", "memory_mb", ..., "recorded_at"}   each new sample; with
      ?resources_after=<id> in the URL first the stored ones after that id (the newest 500 at most),
      and each sample once: a page passes the last one it shows, and loses none committed meanwhile
  {"type": "alert", "id", "kind", "severity", "message", "epoch", "value", "created_at"}
      the session's existing alerts on connect (after the first status, in id order), then each new
      one; kind: session_failed | loss_nan | loss_diverging | resource_limit; severity: warning |
      critical; epoch and value may be null (value is null for NaN). Each alert once per connection.
  {"type": "error", "error"}
Points come in id order, each once. Which ones: those after the id the client gives, as ?after=<id> in
the URL (the stream starts at once) or as a message {"after": <id>} (0 for the whole history); without
either the client gets status and resource messages only until it says. To resume after a reconnect,
pass the last id received: no gaps, no duplicates, across server restarts too.

One rule for every feed (sessions.feeds): the consumer keeps a cursor per feed, the last id it sent this
viewer (None while the viewer does not take the feed). A row at or below the cursor is never sent
again; a tail message that starts above the cursor (a message before it was dropped) is preceded by
the rows between, read from the record. Where the cursors start: metric points where the client says;
alerts at 0 (all of them); resource samples at ?resources_after (the newest 500 above it sent first), or
else at the newest sample there is when the viewer joins (live ones only).
"""
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.services import api_token_authenticate
from common.errors import NotFound
from common.ids import MAX_ID
from sessions import stream
from sessions.feeds import ALERTS, FEEDS, METRICS, PAGE_SIZE, RESOURCES, Feed
from sessions.selectors import SESSION_NOT_FOUND, session_get

NOT_AUTHENTICATED = "authentication required: log in, or send 'Authorization: Bearer <token>'"
BAD_AFTER = "after must be a metric id (an integer >= 0), not {value!r}"
BAD_RESOURCES_AFTER = "resources_after must be a resource sample id (an integer >= 0), not {value!r}"
UNKNOWN_MESSAGE = "unknown message; send {\"after\": <metric id>}"
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


def parse_after(value, message: str = BAD_AFTER) -> int:
    """A cursor the client sent; ValueError (`message`) unless it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(message.format(value=value))
    try:
        after = int(value)
    except ValueError:
        raise ValueError(message.format(value=value)) from None
    if not 0 <= after <= MAX_ID:
        raise ValueError(message.format(value=value))
    return after


def bearer_token(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


@database_sync_to_async
def authenticate(scope):
    """The user of a handshake: its login session, or its bearer token's user; None for neither."""
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return user
    token = bearer_token(scope)
    return api_token_authenticate(plaintext=token) if token else None


@database_sync_to_async
def _visible(*, user, pk: int) -> bool:
    try:
        session_get(user=user, pk=pk)
    except NotFound:
        return False
    return True


class SessionStreamConsumer(AsyncJsonWebsocketConsumer):
    session_pk: int | None = None
    last_status: dict | None = None

    async def connect(self):
        # Per feed, the last row id sent to this viewer; None: not taking that feed (yet).
        self.cursors: dict[str, int | None] = dict.fromkeys(FEEDS)
        await self.accept()
        user = await authenticate(self.scope)
        if user is None:
            return await self._refuse(NOT_AUTHENTICATED, CLOSE_NOT_AUTHENTICATED)
        pk = int(self.scope["url_route"]["kwargs"]["pk"])
        if not await _visible(user=user, pk=pk):
            return await self._refuse(SESSION_NOT_FOUND.format(pk=pk), CLOSE_NOT_FOUND)
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        after, resources_after = query.get("after"), query.get("resources_after")
        try:
            after = parse_after(after[-1]) if after else None
            resources_after = parse_after(resources_after[-1], BAD_RESOURCES_AFTER) if resources_after else None
        except ValueError as error:
            return await self._refuse(str(error), CLOSE_BAD_REQUEST)

        # Join the group before reading anything: a row committed while the backfill runs then arrives
        # as a group message, queued until the backfill is sent, and is dropped if it was in it.
        self.session_pk = pk
        await self.channel_layer.group_add(stream.group_name(pk), self.channel_name)
        await stream.watch(session_pk=pk)
        if resources_after is None:
            # Before the first status message, which tells the client it is live: every sample
            # committed after that message reaches it.
            self.cursors[RESOURCES.name] = await database_sync_to_async(RESOURCES.last_id)(session_pk=pk)
        await self.stream_status({"status": await database_sync_to_async(stream.session_state)(session_pk=pk)})
        await self._start(ALERTS, 0)
        if resources_after is not None:
            await self._start(RESOURCES, resources_after, newest=True)
        if after is not None:
            await self._start(METRICS, after)

    async def disconnect(self, code):
        if self.session_pk is None:
            return
        await self.channel_layer.group_discard(stream.group_name(self.session_pk), self.channel_name)
        stream.unwatch(session_pk=self.session_pk)
        self.session_pk = None

    async def receive_json(self, content, **kwargs):
        if self.session_pk is None:
            return
        if not isinstance(content, dict) or "after" not in content:
            return await self.send_json({"type": "error", "error": UNKNOWN_MESSAGE})
        try:
            after = parse_after(content["after"])
        except ValueError as error:
            return await self.send_json({"type": "error", "error": str(error)})
        await self._start(METRICS, after)

    # Group messages from the session's tail (sessions.stream) --------------------------------------

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
        if status is not None and status != self.last_status:
            self.last_status = status
            await self.send_json(status)

    # -----------------------------------------------------------------------------------------------

    async def _start(self, feed: Feed, after: int, *, newest: bool = False) -> None:
        """Take `feed` from `after` on: the stored rows above it first (with `newest`, only the newest
        page of them), then the tail's."""
        self.cursors[feed.name] = after
        if newest:
            rows = await database_sync_to_async(feed.newest_after)(session_pk=self.session_pk, after=after)
            await self._send(feed, rows)
        else:
            await self._send_stored(feed, upto=None)

    async def _send_stored(self, feed: Feed, *, upto: int | None) -> None:
        """Send the stored rows of `feed` above its cursor (up to `upto`), a page at a time."""
        while True:
            rows = await database_sync_to_async(feed.rows_after)(
                session_pk=self.session_pk, after=self.cursors[feed.name], upto=upto
            )
            await self._send(feed, rows)
            if len(rows) < PAGE_SIZE:
                return

    async def _send(self, feed: Feed, rows: list[dict]) -> None:
        for message in feed.messages(rows):
            await self.send_json(message)
        if rows:
            self.cursors[feed.name] = rows[-1]["id"]

    async def _refuse(self, error: str, code: int) -> None:
        await self.send_json({"type": "error", "error": error})
        await self.close(code=code)
