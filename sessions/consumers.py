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
"""
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.services import api_token_authenticate
from sessions import stream
from sessions.selectors import SESSION_NOT_FOUND, session_get
from common.errors import NotFound

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
    if after < 0:
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
def _authenticate(scope):
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
    # The last point id sent; None until the client says where to start.
    cursor: int | None = None
    last_status: dict | None = None
    # The last alert id sent: alerts are sent from connect on, whatever the point cursor.
    alert_cursor: int = 0
    # The last resource sample id sent, when the client gave one (?resources_after); None: every live one.
    resource_cursor: int | None = None

    async def connect(self):
        await self.accept()
        user = await _authenticate(self.scope)
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

        # Join the group before reading anything: a point committed while the backfill runs then
        # arrives as a group message, queued until the backfill is sent, and is dropped if it was in it.
        self.session_pk = pk
        await self.channel_layer.group_add(stream.group_name(pk), self.channel_name)
        await stream.watch(session_pk=pk)
        await self.stream_status({"status": await database_sync_to_async(stream.session_state)(session_pk=pk)})
        await self._send_stored_alerts()
        if resources_after is not None:
            self.resource_cursor = resources_after
            samples = await database_sync_to_async(stream.resource_samples_newest)(
                session_pk=pk, after=resources_after
            )
            await self.stream_resources({"samples": samples})
        if after is not None:
            await self._start(after)

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
        await self._start(after)

    # Group messages from the session's tail (sessions.stream) --------------------------------------

    async def stream_points(self, event):
        if self.cursor is None:
            return
        if event["after"] > self.cursor:
            # This message starts above what this viewer has: fetch the range between from the record.
            await self._send_stored(upto=event["after"])
        points = [point for point in event["points"] if point["id"] > self.cursor]
        if points:
            await self._send_points(points)

    async def stream_status(self, event):
        status = event["status"]
        if status is not None and status != self.last_status:
            self.last_status = status
            await self.send_json(status)

    async def stream_resources(self, event):
        for sample in event["samples"]:
            if self.resource_cursor is not None:
                # The tail may send samples this viewer already got from the record on connect.
                if sample["id"] <= self.resource_cursor:
                    continue
                self.resource_cursor = sample["id"]
            await self.send_json(sample)

    async def stream_alerts(self, event):
        if event["after"] > self.alert_cursor:
            # A message this viewer missed (dropped by a full channel) carried the ones between.
            await self._send_stored_alerts()
        # The tail may send alerts this viewer already got from the record on connect.
        for alert in event["alerts"]:
            if alert["id"] > self.alert_cursor:
                await self.send_json(alert)
                self.alert_cursor = alert["id"]

    # -----------------------------------------------------------------------------------------------

    async def _start(self, after: int) -> None:
        self.cursor = after
        await self._send_stored(upto=None)

    async def _send_stored(self, *, upto: int | None) -> None:
        """Send the stored points above the cursor (up to `upto`), a page at a time."""
        while True:
            points = await database_sync_to_async(stream.metric_points)(
                session_pk=self.session_pk, after=self.cursor, upto=upto
            )
            if points:
                await self._send_points(points)
            if len(points) < stream.PAGE_SIZE:
                return

    async def _send_stored_alerts(self) -> None:
        """Send the stored alerts above the alert cursor, a page at a time."""
        while True:
            alerts = await database_sync_to_async(stream.alerts_after)(
                session_pk=self.session_pk, after=self.alert_cursor
            )
            for alert in alerts:
                await self.send_json(alert)
                self.alert_cursor = alert["id"]
            if len(alerts) < stream.PAGE_SIZE:
                return

    async def _send_points(self, points: list[dict]) -> None:
        await self.send_json({"type": "metrics", "points": points})
        self.cursor = points[-1]["id"]

    async def _refuse(self, error: str, code: int) -> None:
        await self.send_json({"type": "error", "error": error})
        await self.close(code=code)
