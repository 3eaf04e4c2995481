"""What a deployment's live stream carries: its feeds (sessions.feeds.Feed over a deployment's rows) and
where it stands (the status message), followed by the sessions' tail (sessions.stream) as the
DEPLOYMENTS source.

- equity: the account and its benchmark marked at each bar (EquityPoint), in batches, read at every
  tick of the tail: what the chart waits for.
- orders: each order as it is now. An order row changes after it is written (accepted at one bar,
  filled at the next, or when a live venue says), so its id says when it is new and nothing more. New
  orders come by id like every feed's rows; a change to one that is already out comes with the status:
  the status message lists the open orders as they are, and a viewer that was sent an order while it
  was open and sees it changed or gone from that list reads it again and is sent its new state
  (trading.consumers). An order's state only moves forward, and the viewer's own read comes after the
  status it answers, so no viewer is sent an older state after a newer one.
- fills and events: rows that never change, by id.
- decisions: what the risk checks said of each order (risk.models.RiskDecision), approved or refused
  with its reason code: rows that never change, by id.

The status message: the deployment's status and why, cash, equity, PnL (total and today), drawdown,
the last bar, the positions (symbol, quantity, last price, value) and the open orders.

One writer appends a deployment's equity points, orders, fills and risk decisions: the trading process
holding its lease, one transaction per bar, so they commit in id order. Events have two (that process, and a
person pausing or stopping the deployment from a page): two committed within one tick in inverse id
order could cost the live feed the lower one, as the sessions' alerts could; the record keeps it, and a
reconnect from an earlier id reads it.
"""
from __future__ import annotations

from engine.live.orders import OPEN_ORDER_STATUSES
from risk.models import RiskDecision
from sessions.feeds import Feed
from sessions.stream import Source
from trading.models import Deployment, DeploymentEvent, EquityPoint, Fill, Order, Position

OPEN_STATUSES = tuple(sorted(str(status) for status in OPEN_ORDER_STATUSES))
# The deployment's own fields in its status message; the rest is computed from them and its rows.
STATUS_FIELDS = ("status", "error", "mode", "initial_cash", "cash", "equity", "peak_equity", "day_start_equity",
                 "last_bar", "last_bar_time", "bars_done", "heartbeat_at")


class OrderFeed(Feed):
    """The orders of a deployment, also read by id (a changed order read again) and by status (the open
    ones, for the status message)."""

    def rows_of(self, *, owner_pk: int, ids) -> list[dict]:
        """The orders of the owner among `ids`, as they are now, in id order."""
        rows = Order.objects.filter(deployment_id=owner_pk, pk__in=list(ids)).order_by("pk")
        return self._rows(rows.values_list(*self.fields))

    def open_rows(self, *, owner_pk: int) -> list[dict]:
        rows = Order.objects.filter(deployment_id=owner_pk, status__in=OPEN_STATUSES).order_by("pk")
        return self._rows(rows.values_list(*self.fields))


class DecisionFeed(Feed):
    """The risk decisions of a deployment, also read as the latest refusals (its page shows them apart)."""

    def refused_newest(self, *, owner_pk: int, limit: int) -> list[dict]:
        """The newest `limit` refused decisions, newest first."""
        rows = RiskDecision.objects.filter(deployment_id=owner_pk, approved=False).order_by("-pk")
        return self._rows(rows.values_list(*self.fields)[:limit])


EQUITY = Feed(
    "equity", EquityPoint, ("id", "bar_index", "time", "equity", "cash", "benchmark"), None, "equity",
    batched=True, fast=True, owner_field="deployment_id",
)
ORDERS = OrderFeed(
    "orders", Order,
    ("id", "bar_index", "bar_time", "symbol", "side", "quantity", "order_type", "limit_price", "status",
     "filled_quantity", "average_price", "fees", "reason", "refused_by_risk", "created_at"),
    "created_at", "order", owner_field="deployment_id",
)
FILLS = Feed(
    "fills", Fill, ("id", "order_id", "symbol", "side", "quantity", "price", "fee", "time", "recorded_at"),
    "recorded_at", "fill", owner_field="deployment_id",
)
EVENTS = Feed(
    "events", DeploymentEvent, ("id", "severity", "message", "created_at"), "created_at", "event",
    owner_field="deployment_id",
)

DECISIONS = DecisionFeed(
    "decisions", RiskDecision,
    ("id", "client_order_id", "bar_index", "symbol", "side", "quantity", "approved", "code", "message", "values",
     "created_at"),
    "created_at", "decision", owner_field="deployment_id",
)

FEEDS: dict[str, Feed] = {feed.name: feed for feed in (EQUITY, ORDERS, FILLS, EVENTS, DECISIONS)}


def position_rows(*, deployment_pk: int) -> list[dict]:
    """The deployment's positions: symbol, quantity, last price and value (None until a price is known)."""
    rows = Position.objects.filter(deployment_id=deployment_pk).order_by("symbol")
    return [
        {"symbol": symbol, "quantity": quantity, "last_price": price,
         "value": None if price is None else quantity * price}
        for symbol, quantity, price in rows.values_list("symbol", "quantity", "last_price")
    ]


def deployment_state(pk: int) -> dict | None:
    """The status message of deployment `pk`, or None once it is deleted."""
    deployment = Deployment.objects.filter(pk=pk).only(*STATUS_FIELDS).first()
    if deployment is None:
        return None
    state = {field: getattr(deployment, field) for field in STATUS_FIELDS}
    state["heartbeat_at"] = deployment.heartbeat_at.isoformat() if deployment.heartbeat_at else None
    return {
        "type": "status", **state,
        "pnl": deployment.pnl, "pnl_today": deployment.pnl_today, "drawdown": deployment.drawdown,
        "positions": position_rows(deployment_pk=pk),
        "open_orders": ORDERS.open_rows(owner_pk=pk),
    }


DEPLOYMENTS = Source("deployment-stream", FEEDS, deployment_state)
