"""The two small interfaces the trading loop drives: a Feed of closed bars and a Broker of orders.

Feeds: engine/live/replay.py (a dataset's period, bar by bar) and engine/live/exchange.py (an
exchange's closed bars, polled). Brokers: engine/live/paper.py (simulated fills) and
engine/live/exchange.py (a real venue through ccxt).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from engine.data.market import MarketData
from engine.live.orders import Account, Fill, Order, OrderRequest


@dataclass(frozen=True)
class Bar:
    """One closed bar of every traded symbol; arrays are aligned with `symbols`.

    index: the bar's row in the feed's market (MarketData), which holds it and everything before it.
    volume: NaN where the data has none (a volume cap then does not apply).
    """

    index: int
    time: str  # ISO timestamp of the bar
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def prices(self) -> dict[str, float]:
        """Close price by symbol."""
        return {s: float(p) for s, p in zip(self.symbols, self.close, strict=True)}

    def position_of(self, symbol: str) -> int:
        return self.symbols.index(symbol)


class Feed(Protocol):
    """Closed bars, one at a time, without blocking: one trading process serves many deployments from
    one loop, so a feed says when its next bar is due instead of waiting for it."""

    symbols: tuple[str, ...]

    def market(self) -> MarketData:
        """The market data up to and including the latest bar poll returned (features included): what
        observations are built from. Rows after that bar, where a replay holds them, are never read."""

    def poll(self) -> Bar | None:
        """The next closed bar when it is due, else None (nothing new yet, or the feed has ended)."""

    @property
    def finished(self) -> bool:
        """True once no bar will ever come again (a replay's period is over)."""

    def seconds_to_next(self) -> float:
        """How long until poll may return a bar (0 when one is due now): the loop's sleep hint."""

    def close(self) -> None:
        """Release what the feed holds (connections)."""


@dataclass(frozen=True)
class Update:
    """What changed at a broker in one call: orders in their new state, and new fills (in order)."""

    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)


class BrokerUnavailable(RuntimeError):
    """The venue did not answer, or answered that it cannot now (timeout, network, maintenance).

    Whether an order sent in that call arrived is unknown: send it again with the same client order id,
    or look it up with get_order, once the venue answers."""


class Broker(Protocol):
    def submit(self, request: OrderRequest, bar: Bar) -> Update:
        """Place `request`, decided at `bar`. Idempotent on client_order_id: an id the broker already
        holds answers with that order, and places nothing. A venue's refusal is an order with status
        rejected and its reason; BrokerUnavailable when the venue cannot be reached."""

    def cancel(self, client_order_id: str) -> Update:
        """Cancel what is left of an open order (a final order is returned as it is)."""

    def sync(self, bar: Bar) -> Update:
        """Bring the broker to `bar`, a newly closed bar: fill, expire or update open orders (the
        paper broker fills pending ones against it; a live broker polls the venue). Returns what changed."""

    def get_order(self, client_order_id: str) -> Order | None:
        """The order with that id, or None when the broker never received it."""

    def open_orders(self) -> list[Order]:
        """Orders not yet final."""

    def account(self) -> Account:
        """Cash and positions now."""

    def fills(self) -> list[Fill]:
        """Every fill of this account, oldest first (what reconciliation compares the record with)."""
