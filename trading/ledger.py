"""The record of what a deployment traded, written from its broker's updates: orders (moved only through
the engine's order status table), fills (each once, by the broker's id), positions (the sum of the fills)
and the equity marked at each bar. The caller holds the deployment's row lock and a transaction."""
from __future__ import annotations

from engine.live.orders import ORDER_TRANSITIONS, Fill, Order, OrderRequest
from engine.live.venue import Bar, Update
from trading.models import Deployment, EquityPoint
from trading.models import Fill as FillRow
from trading.models import Order as OrderRow
from trading.models import Position as PositionRow

ILLEGAL_ORDER_MOVE = "order {cid}: the broker reports {to!r} after {current!r}, which no order does"


class LedgerError(RuntimeError):
    """The broker reported something the record cannot take (an order moving backwards): reconcile."""


def record_update(deployment: Deployment, update: Update, bar: Bar) -> None:
    for order in update.orders:
        record_order(deployment, order, bar)
    for fill in update.fills:
        record_fill(deployment, fill, bar)


def record_order(deployment: Deployment, order: Order, bar: Bar) -> OrderRow:
    request = order.request
    row = OrderRow.objects.filter(deployment=deployment, client_order_id=request.client_order_id).first()
    values = _order_values(order)
    if row is None:
        return OrderRow.objects.create(deployment=deployment, client_order_id=request.client_order_id,
                                       bar_index=bar.index, bar_time=bar.time, **_request_values(request), **values)
    if row.status != values["status"] and values["status"] not in ORDER_TRANSITIONS[row.status]:
        raise LedgerError(ILLEGAL_ORDER_MOVE.format(cid=request.client_order_id, to=values["status"],
                                                    current=row.status))
    OrderRow.objects.filter(pk=row.pk).update(**values)
    return row


def record_refusal(deployment: Deployment, request: OrderRequest, bar: Bar, *, code: str, message: str) -> OrderRow:
    """An order the risk check refused: recorded as rejected, never sent."""
    row, _ = OrderRow.objects.get_or_create(
        deployment=deployment, client_order_id=request.client_order_id,
        defaults={"bar_index": bar.index, "bar_time": bar.time, **_request_values(request), "status": "rejected",
                  "reason": f"risk: {code}: {message}" if code else f"risk: {message}", "refused_by_risk": True},
    )
    return row


def record_fill(deployment: Deployment, fill: Fill, bar: Bar) -> bool:
    """Record `fill` unless it already is (its fill_id); returns whether it was new. The position moves
    with it, in the same transaction."""
    if FillRow.objects.filter(deployment=deployment, fill_id=fill.fill_id).exists():
        return False
    order = OrderRow.objects.get(deployment=deployment, client_order_id=fill.client_order_id)
    FillRow.objects.create(deployment=deployment, order=order, fill_id=fill.fill_id, symbol=fill.symbol,
                           side=fill.side, quantity=fill.quantity, price=fill.price, fee=fill.fee,
                           fee_base=fill.fee_base, time=fill.time or bar.time)
    position, _ = PositionRow.objects.get_or_create(deployment=deployment, symbol=fill.symbol)
    position.quantity = position.quantity + fill.position_change
    position.last_price = fill.price
    position.save(update_fields=["quantity", "last_price", "updated_at"])
    return True


def mark(deployment: Deployment, bar: Bar, *, equity: float, cash: float) -> dict:
    """The equity point of `bar` and the deployment's running figures (cash, equity, peak, day's start),
    as the fields to save on the deployment."""
    prices = bar.prices()
    if not deployment.benchmark_prices:
        deployment.benchmark_prices = [prices[s] for s in deployment.symbols]
    benchmark = _benchmark(deployment, prices)
    EquityPoint.objects.update_or_create(deployment=deployment, bar_index=bar.index,
                                         defaults={"time": bar.time, "equity": equity, "cash": cash,
                                                   "benchmark": benchmark})
    for symbol, price in prices.items():
        PositionRow.objects.filter(deployment=deployment, symbol=symbol).update(last_price=price)
    day = bar.time[:10]
    fields = {
        "cash": cash, "equity": equity, "benchmark_prices": deployment.benchmark_prices,
        "peak_equity": max(equity, deployment.peak_equity or equity),
        "day": day, "day_start_equity": deployment.day_start_equity if deployment.day == day else equity,
    }
    for key, value in fields.items():
        setattr(deployment, key, value)
    return fields


def _benchmark(deployment: Deployment, prices: dict[str, float]) -> float:
    """Equal amounts of every symbol bought at the first bar's closes and held, at no cost."""
    base = deployment.benchmark_prices
    growth = [prices[s] / p for s, p in zip(deployment.symbols, base, strict=True)]
    return deployment.initial_cash * sum(growth) / len(growth)


def adopt_opening_positions(deployment: Deployment, account) -> None:
    """A live account holds what it held before the deployment: the record starts from there (once,
    before the first bar), so reconciliation compares what the deployment itself traded."""
    if PositionRow.objects.filter(deployment=deployment).exists():
        return
    for symbol in deployment.symbols:
        PositionRow.objects.create(deployment=deployment, symbol=symbol, quantity=account.positions.get(symbol, 0.0))


def ledger_positions(deployment: Deployment) -> dict[str, float]:
    return dict(PositionRow.objects.filter(deployment=deployment).values_list("symbol", "quantity"))


def ledger_cash(deployment: Deployment) -> float:
    """The initial cash moved by every recorded fill, in the order the fills were recorded (the broker's
    own arithmetic, so a paper broker's cash is matched exactly)."""
    cash = deployment.initial_cash
    for side, quantity, price, fee in (FillRow.objects.filter(deployment=deployment).order_by("id")
                                       .values_list("side", "quantity", "price", "fee")):
        cash = cash - (quantity * price + fee) if side == "buy" else cash + (quantity * price - fee)
    return cash


def _request_values(request: OrderRequest) -> dict:
    return {"symbol": request.symbol, "side": request.side, "quantity": request.quantity,
            "order_type": request.order_type, "limit_price": request.limit_price,
            "time_in_force": request.time_in_force}


def _order_values(order: Order) -> dict:
    return {"status": str(order.status), "filled_quantity": order.filled_quantity,
            "average_price": order.average_price, "fees": order.fees, "broker_order_id": order.broker_order_id,
            "reason": order.reason}
