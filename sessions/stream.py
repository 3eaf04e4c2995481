"""The bridge from the worker processes to the WebSocket viewers of a session: the database is the
record, and the stream is its tail.

Why a poll of the database rather than a message bus:
- the worker already writes every point to the database (PerformanceMetric, ResourceUsage, the
  session row), so it needs no publisher, and nothing can be published that is not recorded;
- it works the same on the embedded default (SQLite, no Redis: InMemoryChannelLayer cannot cross
  processes, and channels-postgres' migrations fail on SQLite) and on PostgreSQL, and crosses
  processes and machines, since every process sees the same database;
- it loses nothing: a point's database id is its cursor, so a viewer that reconnects (or a server
  that restarts) resumes after the last id it saw, without gaps or duplicates.

Inside one daphne process there is ONE tail task per watched session. For each feed of the session
(sessions.feeds: metric points, resource samples, alerts) it asks for the rows above the last id it
saw (an indexed range query) and fans them out to the session's consumers in this process through the
channel layer (group_send); 100 viewers of a session cost one query per tick, not 100. Fast feeds
(metric points) are read every STREAM_POLL_SECONDS, the others with the session row every
STREAM_STATUS_POLL_SECONDS (they change every few seconds at most). The task stops when the last
viewer leaves. The cost: one query per watched session per tick, and up to one tick of latency.

A tail message is {"type": "stream.rows", "feed": <name>, "after": <id>, "rows": [...]}: the rows of
the feed with after < id, in id order. sessions.consumers says what a viewer does with it.

The tail follows a Source: a session's (SESSIONS: its feeds, its status) or a deployment's
(trading.feeds.DEPLOYMENTS: equity points, orders, fills, events, and where it stands), each its own
group of viewers, through the same loop.

At scale (many watched sessions, several web processes) what would replace the timer is a wake-up:
PostgreSQL LISTEN/NOTIFY (the worker NOTIFYs "session_<id>" after its commit, the tail LISTENs and
queries when woken) or channels-redis carrying the same nudge. The query and the id cursor stay: the
wake-up only says *when* to read, the database still says *what* happened.

The group names carry a token of this process, so that the fan-out stays inside the process whichever
channel layer is configured: with channels-redis, every web process still runs its own tails, and a
viewer must not get each point once per process. Consumers drop what they have already sent (by id)
and fetch from the database any range a tail message says they missed (a message dropped by a full
channel), so each row reaches each viewer once, in id order.

One assumption: a session's metric rows commit in id order. They do: one worker writes a session at a
time (session_transition hands it out), each epoch's rows in one transaction, and SQLite has a single
writer. Two processes appending to one session at once on PostgreSQL could commit a lower id after a
higher one, which a tail that has passed it would skip; that would need a per-session sequence number.
Alerts have two writers in the worker (the training thread's epochs, the sampler thread's resource
alerts), so on PostgreSQL two alerts committed within one tick in inverse id order could lose the lower
one in the live feed; the record keeps it, and every (re)connect sends all of a session's alerts.
"""
import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from sessions.feeds import FEEDS, PAGE_SIZE, Feed
from sessions.models import StrategySession

logger = logging.getLogger(__name__)

STATUS_FIELDS = ("status", "progress_epoch", "progress_total")
# The tail keeps going after a database error (SQLite "database is locked" under a burst of writes,
# a PostgreSQL restart), more slowly.
ERROR_BACKOFF_SECONDS = 1.0

_PROCESS_TOKEN = uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Source:
    """What one kind of stream follows: the feeds of an owner row's rows (sessions.feeds.Feed, the
    same owner_field each), its status message (`state(pk)`, None once the row is gone), and the name its
    viewers' groups start with. A session's stream is SESSIONS below; a deployment's is in trading.feeds."""

    name: str
    feeds: Mapping[str, Feed]
    state: Callable[[int], dict | None]

    def group(self, pk: int) -> str:
        """The channel-layer group of the viewers of `pk` in this process."""
        return f"{self.name}.{pk}.{_PROCESS_TOKEN}"

    async def watch(self, pk: int) -> None:
        """A viewer of `pk` joined: start its tail if none runs, and return once the tail sends whatever
        commits from now on (so that the viewer's own reads, after this, leave no gap)."""
        tail = _tails.get((self.name, pk))
        if tail is None or not tail.alive():
            # A tail of a closed event loop (a server restarted inside this process, as in tests) is replaced.
            tail = _tails[(self.name, pk)] = _Tail(self, pk)
        tail.viewers += 1
        await tail.ready.wait()

    def unwatch(self, pk: int) -> asyncio.Task | None:
        """A viewer left: stop the tail with the last one. Returns the stopped task (to await), if any."""
        tail = _tails.get((self.name, pk))
        if tail is None:
            return None
        tail.viewers -= 1
        if tail.viewers > 0:
            return None
        del _tails[(self.name, pk)]
        tail.task.cancel()
        return tail.task


def group_name(session_pk: int) -> str:
    """The channel-layer group of the viewers of `session_pk` in this process."""
    return SESSIONS.group(session_pk)


def poll_seconds() -> float:
    return float(settings.TRADEMASTER["STREAM_POLL_SECONDS"])


def status_poll_seconds() -> float:
    return float(settings.TRADEMASTER["STREAM_STATUS_POLL_SECONDS"])


def session_state(*, session_pk: int) -> dict | None:
    """The status message of the session, or None once it is deleted."""
    state = StrategySession.objects.filter(pk=session_pk).values(*STATUS_FIELDS).first()
    return None if state is None else {"type": "status", **state}


SESSIONS = Source("session-stream", FEEDS, lambda pk: session_state(session_pk=pk))


# The tails ------------------------------------------------------------------------------------------


class _Tail:
    """The one task of this process that reads a watched row's new rows (a session's, a deployment's)
    and fans them out."""

    def __init__(self, source: Source, pk: int):
        self.source = source
        self.pk = pk
        self.viewers = 0
        # Set once the tail knows where the owner's rows end: whatever commits later, it sends.
        self.ready = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"{source.name}-{pk}")

    def alive(self) -> bool:
        return not self.task.done() and self.task.get_loop() is asyncio.get_running_loop()

    async def _run(self) -> None:
        layer = get_channel_layer()
        group = self.source.group(self.pk)
        loop = asyncio.get_running_loop()
        feeds = self.source.feeds
        fast = [feed for feed in feeds.values() if feed.fast]
        slow = [feed for feed in feeds.values() if not feed.fast]
        cursors: dict[str, int] | None = None
        status = None  # None: the first poll sends the status, which consumers drop when unchanged
        status_due = 0.0
        while True:
            try:
                if cursors is None:
                    cursors = {feed.name: await database_sync_to_async(feed.last_id)(owner_pk=self.pk)
                               for feed in feeds.values()}
                    self.ready.set()
                behind = await self._send_rows(layer, group, fast, cursors)
                if loop.time() >= status_due:
                    status_due = loop.time() + status_poll_seconds()
                    status = await self._send_status(layer, group, status)
                    await self._send_rows(layer, group, slow, cursors)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s of %s: reading the database failed", self.source.name, self.pk)
                await asyncio.sleep(ERROR_BACKOFF_SECONDS)
                continue
            if not behind:  # else more are waiting: read on at once
                await asyncio.sleep(poll_seconds())

    async def _send_rows(self, layer, group: str, feeds: list[Feed], cursors: dict[str, int]) -> bool:
        """Send each feed's rows above its cursor; True when a feed has more than one read brought."""
        behind = False
        for feed in feeds:
            rows = await database_sync_to_async(feed.rows_after)(owner_pk=self.pk, after=cursors[feed.name])
            if rows:
                # "after" lets a consumer see that it missed a message, and fetch the range itself.
                event = {"type": "stream.rows", "feed": feed.name, "after": cursors[feed.name], "rows": rows}
                await layer.group_send(group, event)
                cursors[feed.name] = rows[-1]["id"]
            behind = behind or len(rows) >= PAGE_SIZE
        return behind

    async def _send_status(self, layer, group: str, sent: dict | None) -> dict | None:
        state = await database_sync_to_async(self.source.state)(self.pk)
        if state is not None and state != sent:
            await layer.group_send(group, {"type": "stream.status", "status": state})
            return state
        return sent


_tails: dict[tuple[str, int], _Tail] = {}


async def watch(*, session_pk: int) -> None:
    """A viewer of `session_pk` joined (Source.watch)."""
    await SESSIONS.watch(session_pk)


def unwatch(*, session_pk: int) -> asyncio.Task | None:
    """A viewer of `session_pk` left (Source.unwatch)."""
    return SESSIONS.unwatch(session_pk)


def tails_running() -> int:
    """How many sessions (and deployments) this process tails (for tests and the bench)."""
    return sum(1 for tail in _tails.values() if not tail.task.done())
