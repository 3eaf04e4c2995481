"""Orders, fills and the order status machine, as plain data shared by every broker.

An order is identified by its client order id, chosen by the caller before it is sent: a retry after
a timeout sends the same id, and a broker that already holds an order with that id answers with it
instead of placing a second one. Its status moves only through `order_transition`.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field


class OrderStatus(enum.StrEnum):
    NEW = "new"  # made, not yet acknowledged by the broker
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


_S = OrderStatus
# The legal moves; filled, cancelled, rejected and expired are final. A venue may fill an order in
# full or cancel what is left before it acknowledges it, so new leads to every status.
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    _S.NEW: frozenset({_S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.REJECTED, _S.EXPIRED}),
    _S.ACCEPTED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED}),
    _S.FILLED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}
FINAL_ORDER_STATUSES = frozenset(s for s, moves in ORDER_TRANSITIONS.items() if not moves)
OPEN_ORDER_STATUSES = frozenset(OrderStatus) - FINAL_ORDER_STATUSES

ILLEGAL_ORDER_TRANSITION = "cannot move order {id} from {current!r} to {to!r}"

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit")
# gtc: what is not filled stays open; ioc: what is not filled at once is cancelled; day: what is not
# filled by the end of the bar's trading day expires.
TIME_IN_FORCE = ("gtc", "ioc", "day")


class IllegalOrderTransition(ValueError):
    """A move not in ORDER_TRANSITIONS."""


@dataclass(frozen=True)
class OrderRequest:
    """What the trading loop asks a broker for. quantity > 0 in the asset's units; side says the sign."""

    client_order_id: str
    symbol: str
    side: str
    quantity: float
    order_type: str = "market"
    limit_price: float | None = None
    time_in_force: str = "gtc"

    def __post_init__(self):
        if not self.client_order_id:
            raise ValueError("client_order_id must not be empty")
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {self.side!r}")
        if not (math.isfinite(self.quantity) and self.quantity > 0):
            raise ValueError(f"quantity must be a finite number > 0, got {self.quantity!r}")
        if self.order_type not in ORDER_TYPES:
            raise ValueError(f"order_type must be one of {ORDER_TYPES}, got {self.order_type!r}")
        if self.order_type == "limit" and not (
            self.limit_price is not None and math.isfinite(self.limit_price) and self.limit_price > 0
        ):
            raise ValueError(f"a limit order needs a finite limit_price > 0, got {self.limit_price!r}")
        if self.time_in_force not in TIME_IN_FORCE:
            raise ValueError(f"time_in_force must be one of {TIME_IN_FORCE}, got {self.time_in_force!r}")

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == "buy" else -self.quantity


@dataclass(frozen=True)
class Order:
    """An order as the broker holds it: the request, where it stands, and what has filled."""

    request: OrderRequest
    status: str = OrderStatus.NEW
    filled_quantity: float = 0.0
    average_price: float | None = None
    fees: float = 0.0
    broker_order_id: str = ""
    reason: str = ""  # why it was rejected, cancelled or expired, in the broker's words

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id

    @property
    def remaining(self) -> float:
        return max(self.request.quantity - self.filled_quantity, 0.0)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER_STATUSES


def order_transition(order: Order, to: str, **changes) -> Order:
    """`order` moved to status `to` with `changes` (filled_quantity, average_price, fees, reason...).

    The one place an order's status changes; IllegalOrderTransition for a move not in the table.
    Moving to the status it holds is allowed only for partially_filled (another partial fill).
    """
    current, to = str(order.status), str(OrderStatus(to))
    if to not in ORDER_TRANSITIONS[current]:
        raise IllegalOrderTransition(ILLEGAL_ORDER_TRANSITION.format(id=order.client_order_id, current=current, to=to))
    return dataclasses.replace(order, status=to, **changes)


@dataclass(frozen=True)
class Fill:
    """One execution: `quantity` > 0 of `symbol` at `price`.

    fee: paid from cash, in the account's currency. fee_base: paid in the traded asset itself, in its
    units (a venue taking a buy's fee out of what it bought): the position moves by the signed quantity
    less that. fill_id is unique per broker (the venue's trade id), so recording fills twice is detectable.
    """

    fill_id: str
    client_order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    time: str = ""  # ISO timestamp of the bar (paper) or the venue's trade time (live)
    fee_base: float = 0.0

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == "buy" else -self.quantity

    @property
    def position_change(self) -> float:
        """What the fill does to the position: the signed quantity less a fee taken in the asset."""
        return self.signed_quantity - self.fee_base

    @property
    def fee_value(self) -> float:
        """The whole fee in the account's currency (a fee in the asset valued at the fill's price)."""
        return self.fee + self.fee_base * self.price

    @property
    def notional(self) -> float:
        return self.quantity * self.price


@dataclass(frozen=True)
class Account:
    """Cash and positions (units per symbol; negative is short) as the broker holds them."""

    cash: float
    positions: dict[str, float] = field(default_factory=dict)

    def equity(self, prices: dict[str, float]) -> float:
        """Cash plus every position at `prices` (a position without a price raises KeyError)."""
        return self.cash + sum(q * prices[s] for s, q in self.positions.items() if q)
