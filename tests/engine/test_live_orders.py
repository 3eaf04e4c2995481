"""The order status machine: the table of legal moves, and OrderRequest's refusals."""
import itertools
import math

import pytest

from engine.live.orders import (
    FINAL_ORDER_STATUSES,
    ORDER_TRANSITIONS,
    Fill,
    IllegalOrderTransition,
    Order,
    OrderRequest,
    OrderStatus,
    order_transition,
)

REQUEST = OrderRequest(client_order_id="d1b5s0", symbol="BTC/USDT", side="buy", quantity=0.5)


def test_the_table_is_the_lifecycle_new_accepted_partially_filled_then_one_final_status():
    assert FINAL_ORDER_STATUSES == {"filled", "cancelled", "rejected", "expired"}
    assert ORDER_TRANSITIONS["accepted"] == {"partially_filled", "filled", "cancelled", "expired"}
    assert "rejected" not in ORDER_TRANSITIONS["accepted"]  # a venue refuses before it accepts
    assert ORDER_TRANSITIONS["partially_filled"] >= {"partially_filled", "filled"}


@pytest.mark.parametrize(("current", "to"), list(itertools.product(OrderStatus, OrderStatus)))
def test_every_move_is_allowed_exactly_when_the_table_says(current, to):
    order = Order(REQUEST, status=current)
    if to in ORDER_TRANSITIONS[current]:
        assert order_transition(order, to).status == to
    else:
        with pytest.raises(IllegalOrderTransition, match=f"cannot move order d1b5s0 from '{current}' to '{to}'"):
            order_transition(order, to)


def test_a_move_carries_the_fill_and_leaves_the_request_alone():
    order = order_transition(Order(REQUEST), "accepted")
    partly = order_transition(order, "partially_filled", filled_quantity=0.2, average_price=100.0, fees=0.02)
    done = order_transition(partly, "filled", filled_quantity=0.5, average_price=101.0, fees=0.05)
    assert (done.remaining, done.is_open, done.request) == (0.0, False, REQUEST)
    assert (partly.remaining, partly.is_open) == (pytest.approx(0.3), True)


@pytest.mark.parametrize(("changes", "message"), [
    ({"client_order_id": ""}, "client_order_id must not be empty"),
    ({"side": "long"}, "side must be one of"),
    ({"quantity": 0.0}, "quantity must be a finite number > 0"),
    ({"quantity": math.nan}, "quantity must be a finite number > 0"),
    ({"quantity": -1.0}, "quantity must be a finite number > 0"),
    ({"order_type": "stop"}, "order_type must be one of"),
    ({"order_type": "limit"}, "a limit order needs a finite limit_price > 0"),
    ({"order_type": "limit", "limit_price": math.inf}, "a limit order needs a finite limit_price > 0"),
    ({"time_in_force": "fok"}, "time_in_force must be one of"),
])
def test_a_request_that_no_venue_would_take_is_refused_naming_the_field(changes, message):
    values = {"client_order_id": "x", "symbol": "BTC/USDT", "side": "buy", "quantity": 1.0, **changes}
    with pytest.raises(ValueError, match=message):
        OrderRequest(**values)


def test_a_fee_taken_in_the_asset_moves_the_position_and_counts_in_the_fees():
    fill = Fill("t1", "c1", "BTC/USDT", "buy", quantity=0.5, price=40_000.0, fee=0.0, fee_base=0.0005)
    assert fill.position_change == 0.4995 and fill.fee_value == 20.0 and fill.notional == 20_000.0
    sell = Fill("t2", "c2", "BTC/USDT", "sell", quantity=0.2, price=40_000.0, fee=8.0)
    assert sell.position_change == -0.2 and sell.fee_value == 8.0
