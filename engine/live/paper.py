"""A simulated broker: orders filled against the feed's own bars, for paper trading and replays.

By default a market order decided at bar t fills at once at bar t's close, the backtest's own assumption,
so a paper run of a policy can be compared with its backtest. "next_open" is the more cautious
assumption: an order decided after a close fills at the next bar's open. Slippage, a proportional fee,
a cap on the share of a bar's volume and a lot size make it less flattering. Nothing here draws random
numbers or reads the clock: two runs of one deployment produce identical fills, fill ids included.
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from engine.live.orders import Account, Fill, Order, OrderRequest, OrderStatus, order_transition
from engine.live.venue import Bar, Update

FILL_MODELS = ("close", "next_open")
# Relative slack for float noise: a buy that spends the whole cash lands a few ulps off zero, and a
# quantity built from lots (0.1 + 0.2) is not an exact multiple. Far below anything an order means.
TOLERANCE = 1e-9

UNKNOWN_SYMBOL = "unknown symbol {symbol!r} (symbols: {symbols})"
BELOW_LOT = "quantity {quantity!r} is below the lot size {lot_size!r}"
NOT_A_LOT_MULTIPLE = "quantity {quantity!r} is not a whole multiple of the lot size {lot_size!r}"
NO_PRICE = "no price for {symbol!r} at bar {index}"
INSUFFICIENT_CASH = "insufficient cash: buying {quantity!r} {symbol} needs {needed!r} with the fee, cash is {cash!r}"
INSUFFICIENT_POSITION = "insufficient position: selling {quantity!r} {symbol}, {held!r} held"
CASH_RAN_OUT = "insufficient cash at bar {index}: {remaining!r} {symbol} left unfilled, cancelled (cash {cash!r})"
POSITION_RAN_OUT = "insufficient position at bar {index}: {remaining!r} {symbol} left unfilled, cancelled"
IOC_CANCELLED = "immediate or cancel: {remaining!r} not filled at bar {index}, cancelled"
DAY_EXPIRED = "day order: {remaining!r} not filled on {day}, expired"
CANCELLED_ON_REQUEST = "cancelled on request"
UNKNOWN_ORDER = "no order {client_order_id!r} at this broker"


@dataclass(frozen=True)
class PaperParams:
    """How the paper broker fills orders.

    fill_model: "close" fills at the close of the bar an order was decided at (the backtest's
        assumption); "next_open" at the open of the next bar.
    fee_rate: proportional fee on a fill's notional (a fraction, 0.001 = 10 bps), paid from cash.
    slippage_bps: buys fill at price * (1 + s), sells at price * (1 - s), s = slippage_bps / 1e4.
    volume_cap: a fill is at most this fraction of its bar's volume (where the bar has a finite volume);
        None: no cap. The cap applies per order: two orders in one bar may each take it.
    lot_size: quantities are whole multiples of it; 0: any quantity.
    allow_short: whether a sell may take the position below zero.
    """

    fill_model: str = "close"
    fee_rate: float = 0.001
    slippage_bps: float = 0.0
    volume_cap: float | None = None
    lot_size: float = 0.0
    allow_short: bool = False

    def __post_init__(self):
        if self.fill_model not in FILL_MODELS:
            raise ValueError(f"fill_model must be one of {FILL_MODELS}, got {self.fill_model!r}")
        _check("fee_rate", self.fee_rate, 0.0 <= self.fee_rate < 1.0, "in [0, 1)")
        # 1e4 bps would sell at a price of zero.
        _check("slippage_bps", self.slippage_bps, 0.0 <= self.slippage_bps < 1e4, "in [0, 10000)")
        if self.volume_cap is not None:
            _check("volume_cap", self.volume_cap, 0.0 < self.volume_cap <= 1.0, "in (0, 1] or None")
        _check("lot_size", self.lot_size, self.lot_size >= 0.0, ">= 0")
        if not isinstance(self.allow_short, bool):
            raise ValueError(f"allow_short must be a bool, got {self.allow_short!r}")


def _check(name: str, value: float, ok: bool, expected: str) -> None:
    if not (math.isfinite(value) and ok):
        raise ValueError(f"{name} must be a finite number {expected}, got {value!r}")


@dataclass
class _Pending:
    """Where an open order stands in time. last_index: the last bar it was tried against (a bar is
    never tried twice); day: the date of its first try, which a day order does not outlive."""

    client_order_id: str
    last_index: int
    day: str | None = None


DEFAULT_PARAMS = PaperParams()


class PaperBroker:
    """The Broker protocol (engine/live/venue.py) over simulated fills, with an account in one currency.

    Orders are tried in the order they were submitted. A buy is rejected when the cash cannot pay for it
    at the submit bar's close (slippage and fee included); a sell beyond the position is rejected unless
    params.allow_short. What a later bar cannot pay (cash spent meanwhile, or a position sold) is
    filled as far as it goes and the rest cancelled. state() and from_state() carry the broker across a
    process restart exactly.
    """

    def __init__(self, symbols: Sequence[str], *, cash: float, params: PaperParams = DEFAULT_PARAMS,
                 positions: dict[str, float] | None = None):
        self.symbols = tuple(symbols)
        if not self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols must be distinct and not empty, got {self.symbols!r}")
        if not math.isfinite(cash):
            raise ValueError(f"cash must be a finite number, got {cash!r}")
        unknown = sorted(set(positions or {}) - set(self.symbols))
        if unknown:
            raise ValueError(f"positions name symbols the broker does not trade: {', '.join(unknown)}")
        self.params = params
        self.cash = float(cash)
        self.positions = {s: float((positions or {}).get(s, 0.0)) for s in self.symbols}
        self.orders: dict[str, Order] = {}
        self._fills: list[Fill] = []
        self._pending: dict[str, _Pending] = {}
        self._fill_count: Counter[str] = Counter()

    # The Broker protocol.

    def submit(self, request: OrderRequest, bar: Bar) -> Update:
        cid = request.client_order_id
        if cid in self.orders:
            return Update(orders=[self.orders[cid]])
        order = Order(request, broker_order_id=f"paper-{cid}")
        reason = self._rejection(request, bar)
        if reason:
            self.orders[cid] = order_transition(order, OrderStatus.REJECTED, reason=reason)
            return Update(orders=[self.orders[cid]])
        self.orders[cid] = order_transition(order, OrderStatus.ACCEPTED)
        self._pending[cid] = _Pending(cid, last_index=int(bar.index))
        fills = self._attempt(cid, bar) if self.params.fill_model == "close" else []
        return Update(orders=[self.orders[cid]], fills=fills)

    def cancel(self, client_order_id: str) -> Update:
        order = self.orders.get(client_order_id)
        if order is None:
            raise KeyError(UNKNOWN_ORDER.format(client_order_id=client_order_id))
        if order.is_open:
            self._close(client_order_id, OrderStatus.CANCELLED, CANCELLED_ON_REQUEST)
        return Update(orders=[self.orders[client_order_id]])

    def sync(self, bar: Bar) -> Update:
        changed, fills = [], []
        for cid in list(self._pending):
            pending, before = self._pending[cid], self.orders[cid]
            if bar.index <= pending.last_index:
                continue
            if self._expires(pending, bar):
                self._close(cid, OrderStatus.EXPIRED, DAY_EXPIRED.format(remaining=before.remaining, day=pending.day))
            else:
                fills += self._attempt(cid, bar)
            if self.orders[cid] != before:
                changed.append(self.orders[cid])
        return Update(orders=changed, fills=fills)

    def get_order(self, client_order_id: str) -> Order | None:
        return self.orders.get(client_order_id)

    def open_orders(self) -> list[Order]:
        return [self.orders[cid] for cid in self._pending]

    def account(self) -> Account:
        return Account(cash=self.cash, positions=dict(self.positions))

    def fills(self) -> list[Fill]:
        return list(self._fills)

    def prune(self) -> None:
        """Forget final orders and past fills, once the caller has recorded them: the broker then holds,
        and state() saves, only cash, positions and what is still open. A client order id forgotten this
        way is no longer recognised, so call it only when its orders will not be sent again (the trading
        process: after a bar's record has committed; a bar redone after a crash restores the state saved
        with the previous bar)."""
        self.orders = {cid: order for cid, order in self.orders.items() if order.is_open}
        self._fills = []
        self._fill_count = Counter({cid: n for cid, n in self._fill_count.items() if cid in self.orders})

    # Persistence.

    def state(self) -> dict:
        """Everything the broker holds, as JSON-serialisable plain data (floats stay floats)."""
        return {
            "symbols": list(self.symbols),
            "params": dataclasses.asdict(self.params),
            "cash": self.cash,
            "positions": dict(self.positions),
            "orders": [_order_state(o) for o in self.orders.values()],
            "fills": [dataclasses.asdict(f) for f in self._fills],
            "pending": [dataclasses.asdict(p) for p in self._pending.values()],
            # Per open order, its fills so far: the next fill's id continues from there after a prune.
            "fill_counts": dict(self._fill_count),
        }

    @classmethod
    def from_state(cls, state: dict) -> PaperBroker:
        """The broker that state() described, identical to it."""
        broker = cls(state["symbols"], cash=state["cash"], params=PaperParams(**state["params"]),
                     positions=state["positions"])
        for o in state["orders"]:
            order = Order(**{**o, "request": OrderRequest(**o["request"])})
            broker.orders[order.client_order_id] = order
        broker._fills = [Fill(**f) for f in state["fills"]]
        broker._pending = {p["client_order_id"]: _Pending(**p) for p in state["pending"]}
        broker._fill_count = Counter(state["fill_counts"])
        return broker

    # Submission checks.

    def _rejection(self, request: OrderRequest, bar: Bar) -> str:
        """Why `request` is refused at `bar`, or "" when it is accepted."""
        if request.symbol not in self.symbols:
            return UNKNOWN_SYMBOL.format(symbol=request.symbol, symbols=", ".join(self.symbols))
        lot_problem = self._lot_problem(request.quantity)
        if lot_problem:
            return lot_problem
        close = float(bar.close[bar.position_of(request.symbol)])
        if not (math.isfinite(close) and close > 0):
            return NO_PRICE.format(symbol=request.symbol, index=bar.index)
        if request.side == "buy":
            return self._cash_problem(request, close)
        return self._position_problem(request)

    def _lot_problem(self, quantity: float) -> str:
        lot = self.params.lot_size
        if lot == 0:
            return ""
        lots = round(quantity / lot)
        if lots >= 1 and abs(quantity - lots * lot) <= TOLERANCE * quantity:
            return ""
        template = BELOW_LOT if quantity < lot else NOT_A_LOT_MULTIPLE
        return template.format(quantity=quantity, lot_size=lot)

    def _cash_problem(self, request: OrderRequest, close: float) -> str:
        # A limit buy never pays more than its limit, so the limit bounds what it may spend.
        price = self._slipped(close, "buy")
        if request.order_type == "limit":
            price = min(price, request.limit_price)
        if not self._exceeds_cash(request.quantity, price):
            return ""
        needed = request.quantity * price + self.params.fee_rate * request.quantity * price
        return INSUFFICIENT_CASH.format(quantity=request.quantity, symbol=request.symbol, needed=needed, cash=self.cash)

    def _position_problem(self, request: OrderRequest) -> str:
        held = self.positions[request.symbol]
        if self.params.allow_short or not self._exceeds_position(request.quantity, held):
            return ""
        return INSUFFICIENT_POSITION.format(quantity=request.quantity, symbol=request.symbol, held=held)

    def _exceeds_cash(self, quantity: float, price: float) -> bool:
        notional = quantity * price
        cost = notional + self.params.fee_rate * quantity * price
        return cost - self.cash > TOLERANCE * max(1.0, notional)

    @staticmethod
    def _exceeds_position(quantity: float, held: float) -> bool:
        return quantity > held + TOLERANCE * abs(held)

    # Filling.

    def _attempt(self, cid: str, bar: Bar) -> list[Fill]:
        """Try the open order `cid` against `bar`: fill what it can, then apply its time in force."""
        pending, request = self._pending[cid], self.orders[cid].request
        pending.last_index = int(bar.index)
        pending.day = pending.day or _date(bar.time)
        price = self._fill_price(request, bar)
        quantity, shortfall = self._fillable(self.orders[cid], bar, price) if price else (0.0, "")
        fills = [self._execute(cid, quantity, price, bar.time)] if quantity > 0 else []
        order = self.orders[cid]
        if order.is_open and shortfall:
            reason = shortfall.format(remaining=order.remaining, symbol=request.symbol, index=bar.index, cash=self.cash)
            self._close(cid, OrderStatus.CANCELLED, reason)
        elif order.is_open and request.time_in_force == "ioc":
            self._close(cid, OrderStatus.CANCELLED, IOC_CANCELLED.format(remaining=order.remaining, index=bar.index))
        return fills

    def _fill_price(self, request: OrderRequest, bar: Bar) -> float | None:
        """The price `request` fills at in `bar`, slippage included; None when the bar has no price or the
        price is beyond the limit."""
        column = bar.close if self.params.fill_model == "close" else bar.open
        base = float(column[bar.position_of(request.symbol)])
        if not (math.isfinite(base) and base > 0):
            return None
        price = self._slipped(base, request.side)
        if request.order_type == "limit":
            beyond = price > request.limit_price if request.side == "buy" else price < request.limit_price
            if beyond:
                return None
        return price

    def _slipped(self, price: float, side: str) -> float:
        s = self.params.slippage_bps / 1e4
        return price * (1 + s) if side == "buy" else price * (1 - s)

    def _fillable(self, order: Order, bar: Bar, price: float) -> tuple[float, str]:
        """How much of `order` fills at `price` in `bar`, and the template of why the rest is cancelled ("" when
        it is not: what the volume cap holds back waits for the time in force)."""
        request = order.request
        quantity = min(order.remaining, self._volume_room(float(bar.volume[bar.position_of(request.symbol)])))
        if request.side == "buy" and self._exceeds_cash(quantity, price):
            return self._whole_lots(max(self.cash, 0.0) / (price * (1 + self.params.fee_rate))), CASH_RAN_OUT
        held = self.positions[request.symbol]
        if request.side == "sell" and not self.params.allow_short and self._exceeds_position(quantity, held):
            return self._whole_lots(max(held, 0.0)), POSITION_RAN_OUT
        return quantity, ""

    def _volume_room(self, volume: float) -> float:
        if self.params.volume_cap is None or not math.isfinite(volume):
            return math.inf
        return self._whole_lots(self.params.volume_cap * max(volume, 0.0))

    def _whole_lots(self, quantity: float) -> float:
        """`quantity` rounded down to whole lots (as it is without a lot size)."""
        lot = self.params.lot_size
        if lot == 0:
            return quantity
        return math.floor(quantity / lot * (1 + TOLERANCE)) * lot

    def _execute(self, cid: str, quantity: float, price: float, time: str) -> Fill:
        order = self.orders[cid]
        request = order.request
        self._fill_count[cid] += 1
        fee = self.params.fee_rate * quantity * price
        fill = Fill(f"{cid}-{self._fill_count[cid]}", cid, request.symbol, request.side, quantity, price, fee, time)
        # The backtest's arithmetic in its order: the paper equity is compared with it to 1e-9.
        if request.side == "buy":
            self.cash -= quantity * price + fee
        else:
            self.cash += quantity * price - fee
        self.positions[request.symbol] += fill.signed_quantity
        self._fills.append(fill)

        filled = order.filled_quantity + quantity
        average = price if order.average_price is None else (
            order.average_price * order.filled_quantity + price * quantity) / filled
        complete = request.quantity - filled <= TOLERANCE * request.quantity
        status = OrderStatus.FILLED if complete else OrderStatus.PARTIALLY_FILLED
        self.orders[cid] = order_transition(order, status, filled_quantity=filled, average_price=average,
                                            fees=order.fees + fee)
        if complete:
            del self._pending[cid]
        return fill

    def _close(self, cid: str, status: str, reason: str) -> None:
        """End the open order `cid` (cancelled or expired) with `reason`."""
        self.orders[cid] = order_transition(self.orders[cid], status, reason=reason)
        del self._pending[cid]

    def _expires(self, pending: _Pending, bar: Bar) -> bool:
        """Whether a day order's trading day (that of its first try) is over at `bar`."""
        request = self.orders[pending.client_order_id].request
        return request.time_in_force == "day" and pending.day is not None and _date(bar.time) > pending.day

    def __repr__(self) -> str:
        return f"PaperBroker(symbols={self.symbols!r}, cash={self.cash!r}, open={len(self._pending)})"


def _order_state(order: Order) -> dict:
    return {**dataclasses.asdict(order), "status": str(order.status)}


def _date(time: str) -> str:
    """The calendar date of an ISO timestamp ("2024-01-02T15:00:00" -> "2024-01-02")."""
    return time[:10]
