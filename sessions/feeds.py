"""What a session's live stream carries besides its status: feeds of rows that only grow.

A feed is a table whose rows belong to a session and are appended in id order (metric points,
resource samples, alerts; orders, fills and risk decisions of the trading app will be more), the
columns a viewer is sent, and how they reach the client. Its rows are read only through the named
selectors here (rows_after, newest_after, last_id), so sessions.stream's tail and the consumer's
backfill read them the same way.

The id is the cursor: a viewer that has a feed up to id N is sent the rows above N, whoever reads
them, and never one twice.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from sessions.models import Alert, PerformanceMetric, ResourceUsage

# Rows per read: a viewer catching up on a long training gets its history in messages of this size,
# and a tail behind by more than this reads again without sleeping.
PAGE_SIZE = 500


@dataclass(frozen=True)
class Feed:
    name: str
    model: type[models.Model]
    fields: tuple[str, ...]  # "id" first; the one datetime field among them is sent in ISO 8601
    time_field: str
    message_type: str
    # Batched: one message {"type": message_type, "points": [row, ...]} per read (metric points come an
    # epoch's worth at a time). Otherwise each row is its own message {"type": message_type, **row}.
    batched: bool = False
    # Read at every tick of the tail (STREAM_POLL_SECONDS) rather than with the status
    # (STREAM_STATUS_POLL_SECONDS): what a viewer waits for.
    fast: bool = False

    def _of(self, session_pk: int, after: int) -> models.QuerySet:
        return self.model.objects.filter(session_id=session_pk, pk__gt=after).values_list(*self.fields)

    def _rows(self, values) -> list[dict]:
        rows = [dict(zip(self.fields, row)) for row in values]
        for row in rows:
            row[self.time_field] = row[self.time_field].isoformat()
        return rows

    def rows_after(self, *, session_pk: int, after: int, upto: int | None = None, limit: int = PAGE_SIZE) -> list[dict]:
        """Up to `limit` rows of the session with after < id (<= upto), in id order."""
        rows = self._of(session_pk, after)
        if upto is not None:
            rows = rows.filter(pk__lte=upto)
        return self._rows(rows.order_by("pk")[:limit])

    def newest_after(self, *, session_pk: int, after: int, limit: int = PAGE_SIZE) -> list[dict]:
        """The newest `limit` rows above `after`, in id order: what a page that showed up to `after`
        lacks, when it shows no more than `limit` anyway."""
        return self._rows(self._of(session_pk, after).order_by("-pk")[:limit])[::-1]

    def last_id(self, *, session_pk: int) -> int:
        last = self.model.objects.filter(session_id=session_pk).order_by("-pk").values_list("pk", flat=True).first()
        return last or 0

    def messages(self, rows: list[dict]) -> list[dict]:
        """What the client is sent for `rows`."""
        if not rows:
            return []
        if self.batched:
            return [{"type": self.message_type, "points": rows}]
        return [{"type": self.message_type, **row} for row in rows]


METRICS = Feed(
    "metrics", PerformanceMetric, ("id", "epoch", "metric_type", "value", "timestamp"), "timestamp", "metrics",
    batched=True, fast=True,
)
RESOURCES = Feed(
    "resources", ResourceUsage,
    ("id", "cpu_percent", "memory_mb", "gpu_percent", "gpu_memory_mb", "disk_io_mb", "network_io_mb", "recorded_at"),
    "recorded_at", "resource",
)
ALERTS = Feed(
    "alerts", Alert, ("id", "kind", "severity", "message", "epoch", "value", "created_at"), "created_at", "alert",
)

FEEDS: dict[str, Feed] = {feed.name: feed for feed in (METRICS, RESOURCES, ALERTS)}
