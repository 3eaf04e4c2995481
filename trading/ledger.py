"""The record of what a deployment traded, written from its broker's updates: orders (moved only through
the engine's order status table), fills (each once, by the broker's id), positions (the sum of the fills)
and the equity marked at each bar. The caller holds the deployment's row lock and a transaction.

A bar's updates are written together (record_updates): a handful of statements whatever the number of
orders, since the trading process writes one bar of every deployment it holds every bar period.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from engine.live.orders import ORDER_TRANSITIONS, Fill, Order, OrderRequest
from engine.live.venue import Bar, Update
from trading.models import Deployment, EquityPoint
from trading.models import Fill as FillRow
from trading.models import Order as OrderRow
from trading.models import Position as PositionRow

ILLEGAL_ORDER_MOVE = "order {cid}: the broker reports {to!r} after {current!r}, which no order does"


class LedgerError(RuntimeError):
    """The broker reported something the record cannot take (an order moving backwards): reconcile."""


def record_updates(deployment: Deployment, updates: Iterable[Update], bar: Bar, *,
                   refused: Iterable[tuple[OrderRequest, str, str]] = (), marks: bool = False,
                   fresh: str | None = None) -> None:
    """Write every order (its latest state) and every new fill of `updates`, in order, with the orders
    the risk check `refused` ((request, code, message): recorded as rejected, never sent), and move the
    positions by the fills. marks: also mark every position at the bar's closes (the bar's last write).
    fresh: the client order id prefix of orders made in this very transaction (a new bar's), which the
    record cannot hold yet, nor their fills: they are written without looking them up first."""
    orders: dict[str, Order] = {}
    fills: list[Fill] = []
    for update in updates:
        orders.update((order.client_order_id, order) for order in update.orders)
        fills.extend(update.fills)
    is_fresh = (lambda cid: cid.startswith(fresh)) if fresh else (lambda cid: False)
    rows = _write_orders(deployment, orders, bar, refused, is_fresh)
    new = _write_fills(deployment, fills, rows, bar, is_fresh)
    _move_positions(deployment, new, prices=bar.prices() if marks else None)


def record_order(deployment: Deployment, order: Order, bar: Bar) -> None:
    record_updates(deployment, [Update(orders=[order])], bar)


def _write_orders(deployment: Deployment, orders: dict[str, Order], bar: Bar,
                  refused: Iterable[tuple[OrderRequest, str, str]], is_fresh) -> dict[str, int]:
    """client_order_id -> row id of every order written."""
    refused = list(refused)
    ids = [cid for cid in (*orders, *(request.client_order_id for request, _, _ in refused)) if not is_fresh(cid)]
    existing = {row.client_order_id: row for row in OrderRow.objects.filter(deployment=deployment,
                                                                          client_order_id__in=ids)} if ids else {}
    new = [OrderRow(deployment=deployment, client_order_id=cid, bar_index=bar.index, bar_time=bar.time,
                    **_request_values(order.request), **_order_values(order))
           for cid, order in orders.items() if cid not in existing]
    new += [OrderRow(deployment=deployment, client_order_id=request.client_order_id, bar_index=bar.index,
                     bar_time=bar.time, **_request_values(request), status="rejected", refused_by_risk=True,
                     reason=f"risk: {code}: {message}" if code else f"risk: {message}")
            for request, code, message in refused if request.client_order_id not in existing]
    moved = {cid: order for cid, order in orders.items() if cid in existing}
    for row in OrderRow.objects.bulk_create(new):
        existing[row.client_order_id] = row
    _move_orders(existing, moved)
    return {cid: row.pk for cid, row in existing.items()}


def _move_orders(rows: dict[str, OrderRow], orders: dict[str, Order]) -> None:
    now = timezone.now()
    changed = []
    for cid, order in orders.items():
        row, values = rows[cid], _order_values(order)
        if all(getattr(row, key) == value for key, value in values.items()):
            continue
        if row.status != values["status"] and values["status"] not in ORDER_TRANSITIONS[row.status]:
            raise LedgerError(ILLEGAL_ORDER_MOVE.format(cid=cid, to=values["status"], current=row.status))
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = now
        changed.append(row)
    if changed:
        OrderRow.objects.bulk_update(changed, [*_order_values(next(iter(orders.values()))), "updated_at"])


def _write_fills(deployment: Deployment, fills: list[Fill], order_ids: dict[str, int], bar: Bar,
                 is_fresh) -> list[Fill]:
    """The fills not recorded before, recorded."""
    if not fills:
        return []
    known = [f.fill_id for f in fills if not is_fresh(f.client_order_id)]
    seen = set(FillRow.objects.filter(deployment=deployment, fill_id__in=known)
               .values_list("fill_id", flat=True)) if known else set()
    new = []
    for fill in fills:
        if fill.fill_id in seen:
            continue
        seen.add(fill.fill_id)
        new.append(fill)
    FillRow.objects.bulk_create([
        FillRow(deployment=deployment, order_id=order_ids[f.client_order_id], fill_id=f.fill_id, symbol=f.symbol,
                side=f.side, quantity=f.quantity, price=f.price, fee=f.fee, fee_base=f.fee_base,
                time=f.time or bar.time)
        for f in new
    ])
    return new


def _move_positions(deployment: Deployment, fills: list[Fill], *, prices: dict[str, float] | None) -> None:
    """Positions plus the fills, in the fills' order (the broker's own arithmetic, so the sums agree);
    with `prices`, every position's last price is the bar's close (one read and one write in all)."""
    if not fills and prices is None:
        return
    rows = PositionRow.objects.filter(deployment=deployment)
    if prices is None:
        rows = rows.filter(symbol__in={f.symbol for f in fills})
    positions = {p.symbol: p for p in rows}
    created = [PositionRow(deployment=deployment, symbol=symbol, quantity=0.0)
               for symbol in dict.fromkeys(f.symbol for f in fills) if symbol not in positions]
    for row in created:
        positions[row.symbol] = row
    for fill in fills:
        position = positions[fill.symbol]
        position.quantity = position.quantity + fill.position_change
        position.last_price = fill.price
    for symbol, position in positions.items():
        if prices is not None and symbol in prices:
            position.last_price = prices[symbol]
    now = timezone.now()
    for position in positions.values():
        position.updated_at = now
    new = {id(row) for row in created}
    PositionRow.objects.bulk_create(created)
    PositionRow.objects.bulk_update([p for p in positions.values() if id(p) not in new],
                                    ["quantity", "last_price", "updated_at"])


def mark(deployment: Deployment, bar: Bar, *, equity: float, cash: float) -> dict:
    """The equity point of `bar` and the deployment's running figures (cash, equity, peak, day's start),
    as the fields to save on the deployment (record_updates(marks=True) moves the positions' prices)."""
    prices = bar.prices()
    if not deployment.benchmark_prices:
        deployment.benchmark_prices = [prices[s] for s in deployment.symbols]
    EquityPoint.objects.create(deployment=deployment, bar_index=bar.index, time=bar.time, equity=equity, cash=cash,
                               benchmark=_benchmark(deployment, prices))
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
    PositionRow.objects.bulk_create([PositionRow(deployment=deployment, symbol=symbol,
                                                 quantity=account.positions.get(symbol, 0.0))
                                     for symbol in deployment.symbols])


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
