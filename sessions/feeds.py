"""What a session's live stream carries besides its status: feeds of rows that only grow.

A feed is a table whose rows belong to one owner row and are appended in id order (a session's metric
points, resource samples and alerts; a deployment's equity points, orders, fills and events, in
trading.feeds), the columns a viewer is sent, and how they reach the client. `owner_field` names the
column that says whose a row is ("session_id" here). Its rows are read only through the named selectors
here (rows_after, newest_after, last_id), so sessions.stream's tail and the consumers' backfill read
them the same way.

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
    time_field: str | None  # that datetime field; None when the rows have none
    message_type: str
    # Batched: one message {"type": message_type, "points": [row, ...]} per read (metric points come an
    # epoch's worth at a time). Otherwise each row is its own message {"type": message_type, **row}.
    batched: bool = False
    # Read at every tick of the tail (STREAM_POLL_SECONDS) rather than with the status
    # (STREAM_STATUS_POLL_SECONDS): what a viewer waits for.
    fast: bool = False
    # The column of the row a feed's rows belong to: a session's (the default) or, for the trading
    # app's feeds, a deployment's ("deployment_id").
    owner_field: str = "session_id"

    # Each selector takes the owner's pk as owner_pk, or as session_pk: the sessions' name for it, which
    # their callers use.

    def _owned(self, owner_pk: int | None, session_pk: int | None) -> models.QuerySet:
        pk = owner_pk if owner_pk is not None else session_pk
        if pk is None:
            raise TypeError("the owner's pk is required (owner_pk)")
        return self.model.objects.filter(**{self.owner_field: pk})

    def _rows(self, values) -> list[dict]:
        rows = [dict(zip(self.fields, row)) for row in values]
        if self.time_field is not None:
            for row in rows:
                row[self.time_field] = row[self.time_field].isoformat()
        return rows

    def rows_after(self, *, owner_pk: int | None = None, after: int, upto: int | None = None, limit: int = PAGE_SIZE,
                   session_pk: int | None = None) -> list[dict]:
        """Up to `limit` rows of the owner with after < id (<= upto), in id order."""
        rows = self._owned(owner_pk, session_pk).filter(pk__gt=after)
        if upto is not None:
            rows = rows.filter(pk__lte=upto)
        return self._rows(rows.order_by("pk").values_list(*self.fields)[:limit])

    def newest_after(self, *, owner_pk: int | None = None, after: int, limit: int = PAGE_SIZE,
                     session_pk: int | None = None) -> list[dict]:
        """The newest `limit` rows above `after`, in id order: what a page that showed up to `after`
        lacks, when it shows no more than `limit` anyway."""
        rows = self._owned(owner_pk, session_pk).filter(pk__gt=after)
        return self._rows(rows.order_by("-pk").values_list(*self.fields)[:limit])[::-1]

    def last_id(self, *, owner_pk: int | None = None, session_pk: int | None = None) -> int:
        last = self._owned(owner_pk, session_pk).order_by("-pk").values_list("pk", flat=True).first()
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
