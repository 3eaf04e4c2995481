"""engine.live.paper: hand-checked fills, each rejection, time in force, persistence, and the ledger (hypothesis)."""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.synthetic import synthetic_market
from engine.live.orders import ORDER_TRANSITIONS, OrderRequest, OrderStatus
from engine.live.paper import PaperBroker, PaperParams
from engine.live.replay import ReplayFeed
from engine.live.venue import Bar

SYMBOLS = ("AAA", "BBB")
NO_FEE = PaperParams(fee_rate=0.0)


def bar(index: int, close, *, open_=None, volume=None, time: str | None = None) -> Bar:
    """A bar of SYMBOLS; one per day from 2024-01-01 unless `time` says otherwise."""
    close = np.array(close, dtype=np.float64)
    open_ = close if open_ is None else np.array(open_, dtype=np.float64)
    volume = np.full(len(SYMBOLS), np.nan) if volume is None else np.array(volume, dtype=np.float64)
    return Bar(index=index, time=time or f"2024-01-{index + 1:02d}T00:00:00", symbols=SYMBOLS, open=open_,
               high=np.maximum(open_, close), low=np.minimum(open_, close), close=close, volume=volume)


def buy(cid: str, quantity: float, symbol: str = "AAA", **kwargs) -> OrderRequest:
    return OrderRequest(cid, symbol, "buy", quantity, **kwargs)


def sell(cid: str, quantity: float, symbol: str = "AAA", **kwargs) -> OrderRequest:
    return OrderRequest(cid, symbol, "sell", quantity, **kwargs)


# Parameters.

@pytest.mark.parametrize("field, value", [
    ("fill_model", "vwap"), ("fee_rate", -0.001), ("fee_rate", 1.0), ("fee_rate", math.nan),
    ("slippage_bps", -1.0), ("slippage_bps", math.inf), ("volume_cap", 0.0), ("volume_cap", 1.5),
    ("lot_size", -1.0), ("lot_size", math.nan), ("allow_short", "yes"),
])
def test_paper_params_reject_a_bad_value_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        PaperParams(**{field: value})


def test_paper_broker_rejects_bad_construction():
    with pytest.raises(ValueError, match="symbols"):
        PaperBroker(("AAA", "AAA"), cash=100.0)
    with pytest.raises(ValueError, match="cash"):
        PaperBroker(SYMBOLS, cash=math.inf)
    with pytest.raises(ValueError, match="ZZZ"):
        PaperBroker(SYMBOLS, cash=100.0, positions={"ZZZ": 1.0})


# The close model.

def test_close_model_fills_a_market_buy_at_once_at_the_close_paying_the_fee():
    broker = PaperBroker(SYMBOLS, cash=10_000.0)  # fee_rate 0.001
    update = broker.submit(buy("b1", 10), bar(0, [100.0, 50.0]))

    (fill,) = update.fills
    assert (fill.fill_id, fill.symbol, fill.side, fill.quantity, fill.price) == ("b1-1", "AAA", "buy", 10, 100.0)
    assert fill.fee == pytest.approx(1.0, rel=1e-12)  # 0.001 * 10 * 100
    assert fill.time == "2024-01-01T00:00:00"
    (order,) = update.orders
    assert (order.status, order.filled_quantity, order.average_price) == ("filled", 10, 100.0)
    assert order.fees == pytest.approx(1.0, rel=1e-12)
    account = broker.account()
    assert account.cash == pytest.approx(8_999.0, rel=1e-12)  # 10_000 - 1_000 - 1
    assert account.positions == {"AAA": 10.0, "BBB": 0.0}
    assert broker.open_orders() == []
    assert broker.fills() == [fill]


def test_close_model_sell_receives_the_notional_less_the_fee():
    broker = PaperBroker(SYMBOLS, cash=0.0, positions={"BBB": 10.0})
    update = broker.submit(sell("s1", 4, "BBB"), bar(0, [100.0, 50.0]))
    assert update.fills[0].price == 50.0
    assert broker.cash == pytest.approx(199.8, rel=1e-12)  # 4 * 50 - 0.001 * 200
    assert broker.positions["BBB"] == 6.0


def test_cash_arithmetic_follows_notional_plus_fee_in_that_order():
    # The paper equity is compared with the backtest's to 1e-9: the same expression, the same float.
    broker = PaperBroker(SYMBOLS, cash=1_000_000.0, params=PaperParams(fee_rate=0.0007))
    q, p = 123.456, 98.7654321
    broker.submit(buy("b", q), bar(0, [p, 1.0]))
    assert broker.cash == 1_000_000.0 - (q * p + 0.0007 * q * p)


def test_slippage_raises_what_a_buy_pays_and_lowers_what_a_sell_gets():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=PaperParams(fee_rate=0.0, slippage_bps=50.0))
    bought = broker.submit(buy("b", 10), bar(0, [100.0, 50.0])).fills[0]
    sold = broker.submit(sell("s", 10), bar(1, [100.0, 50.0])).fills[0]
    assert bought.price == pytest.approx(100.5, rel=1e-12)  # 100 * (1 + 50 / 1e4)
    assert sold.price == pytest.approx(99.5, rel=1e-12)
    assert broker.cash == pytest.approx(10_000.0 - 1_005.0 + 995.0, rel=1e-12)
    assert broker.positions["AAA"] == 0.0


# The next-open model.

def test_next_open_accepts_at_submit_and_fills_at_the_next_bars_open():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=PaperParams(fill_model="next_open", slippage_bps=100.0))
    first = bar(0, [100.0, 50.0])
    update = broker.submit(buy("b", 10), first)
    assert update.fills == [] and update.orders[0].status == "accepted"
    assert broker.sync(first) == type(update)()  # the bar it was decided at never fills it
    assert broker.cash == 10_000.0

    update = broker.sync(bar(1, [105.0, 51.0], open_=[102.0, 50.5]))
    (fill,) = update.fills
    assert (fill.fill_id, fill.quantity, fill.time) == ("b-1", 10, "2024-01-02T00:00:00")
    assert fill.price == pytest.approx(103.02, rel=1e-12)  # open 102 * 1.01
    assert fill.fee == pytest.approx(1.0302, rel=1e-12)
    assert update.orders[0].status == "filled"
    assert broker.cash == pytest.approx(10_000.0 - 1030.2 - 1.0302, rel=1e-12)
    assert broker.sync(bar(2, [110.0, 52.0])).fills == []


def test_next_open_sell_fills_at_the_open_less_slippage():
    broker = PaperBroker(SYMBOLS, cash=0.0, positions={"AAA": 5.0},
                         params=PaperParams(fill_model="next_open", fee_rate=0.0, slippage_bps=100.0))
    broker.submit(sell("s", 5), bar(0, [100.0, 50.0]))
    fill = broker.sync(bar(1, [90.0, 50.0], open_=[80.0, 50.0])).fills[0]
    assert fill.price == pytest.approx(79.2, rel=1e-12)  # 80 * 0.99
    assert broker.cash == pytest.approx(396.0, rel=1e-12)


# The volume cap and time in force.

CAPPED = PaperParams(fee_rate=0.0, volume_cap=0.1)
VOLUME = [50.0, 1e9]  # AAA: at most 5 per bar


def test_volume_cap_leaves_a_gtc_remainder_open_and_fills_it_at_the_next_closes():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=CAPPED)
    update = broker.submit(buy("b", 12), bar(0, [100.0, 50.0], volume=VOLUME))
    assert update.fills[0].quantity == 5.0
    assert update.orders[0].status == "partially_filled" and update.orders[0].remaining == 7.0
    assert broker.open_orders() == update.orders

    update = broker.sync(bar(1, [110.0, 50.0], volume=VOLUME))
    assert [(f.fill_id, f.quantity, f.price) for f in update.fills] == [("b-2", 5.0, 110.0)]
    assert update.orders[0].status == "partially_filled"
    update = broker.sync(bar(2, [120.0, 50.0], volume=VOLUME))
    assert [(f.fill_id, f.quantity, f.price) for f in update.fills] == [("b-3", 2.0, 120.0)]

    order = update.orders[0]
    assert (order.status, order.filled_quantity) == ("filled", 12.0)
    assert order.average_price == pytest.approx(107.5, rel=1e-12)  # (500 + 550 + 240) / 12
    assert broker.cash == 10_000.0 - 1_290.0
    assert broker.open_orders() == []


def test_volume_cap_does_not_apply_where_the_bar_has_no_volume():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=CAPPED)
    update = broker.submit(buy("b", 12), bar(0, [100.0, 50.0], volume=[np.nan, np.nan]))
    assert update.fills[0].quantity == 12 and update.orders[0].status == "filled"


def test_volume_cap_cancels_an_ioc_remainder_at_once():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=CAPPED)
    update = broker.submit(buy("b", 12, time_in_force="ioc"), bar(0, [100.0, 50.0], volume=VOLUME))
    assert update.fills[0].quantity == 5.0
    order = update.orders[0]
    assert (order.status, order.filled_quantity) == ("cancelled", 5.0)
    assert "immediate or cancel" in order.reason and "7.0" in order.reason
    assert broker.sync(bar(1, [100.0, 50.0], volume=VOLUME)) == type(update)()


def test_volume_cap_expires_a_day_remainder_when_a_bar_of_a_later_date_syncs():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=CAPPED)
    hourly = [bar(i, [100.0, 50.0], volume=VOLUME, time=t)
              for i, t in enumerate(["2024-01-02T15:00:00", "2024-01-02T16:00:00", "2024-01-03T09:00:00"])]
    broker.submit(buy("b", 12, time_in_force="day"), hourly[0])
    assert broker.sync(hourly[1]).fills[0].quantity == 5.0  # the same day: still open
    update = broker.sync(hourly[2])
    assert update.fills == []
    order = update.orders[0]
    assert (order.status, order.filled_quantity) == ("expired", 10.0)
    assert "day order" in order.reason and "2024-01-02" in order.reason
    assert broker.positions["AAA"] == 10.0


def test_next_open_ioc_is_cancelled_after_its_one_fill_at_the_next_open():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=PaperParams(fill_model="next_open", fee_rate=0.0,
                                                                  volume_cap=0.1))
    broker.submit(buy("b", 12, time_in_force="ioc"), bar(0, [100.0, 50.0], volume=VOLUME))
    update = broker.sync(bar(1, [100.0, 50.0], open_=[99.0, 50.0], volume=VOLUME))
    assert [(f.quantity, f.price) for f in update.fills] == [(5.0, 99.0)]
    assert update.orders[0].status == "cancelled" and update.orders[0].filled_quantity == 5.0


def test_next_open_day_order_trades_the_day_of_its_first_open_and_expires_after_it():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=PaperParams(fill_model="next_open", fee_rate=0.0,
                                                                  volume_cap=0.1))
    broker.submit(buy("b", 12, time_in_force="day"), bar(0, [100.0, 50.0], volume=VOLUME))
    assert broker.sync(bar(1, [100.0, 50.0], volume=VOLUME)).fills[0].quantity == 5.0  # 2024-01-02
    update = broker.sync(bar(2, [100.0, 50.0], volume=VOLUME))  # 2024-01-03: that day is over
    assert update.fills == [] and update.orders[0].status == "expired"


def test_volume_cap_rounds_down_to_whole_lots():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=PaperParams(fee_rate=0.0, volume_cap=0.1, lot_size=2.0))
    update = broker.submit(buy("b", 10), bar(0, [100.0, 50.0], volume=[59.0, 1e9]))  # cap 5.9 -> 4
    assert update.fills[0].quantity == 4.0


# Limit orders.

def test_limit_buy_waits_until_the_price_is_at_or_below_its_limit():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=NO_FEE)
    update = broker.submit(buy("b", 10, order_type="limit", limit_price=95.0), bar(0, [100.0, 50.0]))
    assert update.fills == [] and update.orders[0].status == "accepted"
    assert broker.sync(bar(1, [96.0, 50.0])) == type(update)()  # unchanged: nothing reported
    update = broker.sync(bar(2, [95.0, 50.0]))
    assert [(f.quantity, f.price) for f in update.fills] == [(10, 95.0)]
    assert broker.cash == 9_050.0


def test_limit_sell_fills_only_at_or_above_its_limit_and_ioc_cancels_otherwise():
    broker = PaperBroker(SYMBOLS, cash=0.0, positions={"AAA": 10.0}, params=NO_FEE)
    update = broker.submit(sell("s1", 5, order_type="limit", limit_price=105.0, time_in_force="ioc"),
                           bar(0, [100.0, 50.0]))
    assert update.fills == [] and update.orders[0].status == "cancelled"
    assert "immediate or cancel" in update.orders[0].reason
    update = broker.submit(sell("s2", 5, order_type="limit", limit_price=105.0), bar(1, [106.0, 50.0]))
    assert [(f.quantity, f.price) for f in update.fills] == [(5, 106.0)]


def test_limit_is_checked_against_the_price_with_slippage():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=PaperParams(fee_rate=0.0, slippage_bps=100.0))
    update = broker.submit(buy("b", 1, order_type="limit", limit_price=100.5), bar(0, [100.0, 50.0]))
    assert update.fills == []  # 100 * 1.01 = 101 > 100.5
    assert broker.sync(bar(1, [99.0, 50.0])).fills[0].price == pytest.approx(99.99, rel=1e-12)


# Rejections.

@pytest.mark.parametrize("params, request_, reason", [
    (PaperParams(), buy("x", 1, "ZZZ"), "unknown symbol 'ZZZ'"),
    (PaperParams(lot_size=10.0), buy("x", 5), "quantity 5 is below the lot size 10.0"),
    (PaperParams(lot_size=10.0), buy("x", 15), "quantity 15 is not a whole multiple of the lot size 10.0"),
    (PaperParams(), buy("x", 100), "insufficient cash: buying 100 AAA needs 10010.0"),
    (PaperParams(), sell("x", 3, "BBB"), "insufficient position: selling 3 BBB, 2.0 held"),
], ids=["unknown_symbol", "below_lot", "not_a_lot_multiple", "insufficient_cash", "insufficient_position"])
def test_submit_rejects_with_a_reason_naming_the_value(params, request_, reason):
    broker = PaperBroker(SYMBOLS, cash=5_000.0, params=params, positions={"BBB": 2.0})
    update = broker.submit(request_, bar(0, [100.0, 50.0]))
    (order,) = update.orders
    assert order.status == "rejected" and order.reason.startswith(reason)
    assert update.fills == [] and broker.fills() == [] and broker.open_orders() == []
    assert broker.account().cash == 5_000.0 and broker.positions == {"AAA": 0.0, "BBB": 2.0}
    assert broker.get_order("x") == order


def test_short_sale_is_allowed_with_allow_short():
    broker = PaperBroker(SYMBOLS, cash=0.0, params=PaperParams(fee_rate=0.0, allow_short=True))
    broker.submit(sell("s", 3), bar(0, [100.0, 50.0]))
    assert broker.positions["AAA"] == -3.0 and broker.cash == 300.0


def test_a_lot_multiple_within_float_noise_is_accepted():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=PaperParams(fee_rate=0.0, lot_size=0.1))
    quantity = 0.1 + 0.2  # 0.30000000000000004
    assert broker.submit(buy("b", quantity), bar(0, [100.0, 50.0])).orders[0].status == "filled"


def test_a_buy_spending_the_whole_cash_is_accepted_despite_float_noise():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=PaperParams(fee_rate=0.001))
    price = 97.3
    quantity = 10_000.0 / (price * 1.001)
    assert broker.submit(buy("b", quantity), bar(0, [price, 50.0])).orders[0].status == "filled"
    assert abs(broker.cash) < 1e-9


def test_a_limit_buy_is_checked_against_the_cash_at_its_limit():
    broker = PaperBroker(SYMBOLS, cash=900.0, params=NO_FEE)
    update = broker.submit(buy("b", 10, order_type="limit", limit_price=90.0), bar(0, [100.0, 50.0]))
    assert update.orders[0].status == "accepted"  # 10 * 100 > 900, but it pays at most 10 * 90


# At fill time.

def test_a_buy_the_cash_can_no_longer_pay_at_the_next_open_fills_what_it_can_and_cancels_the_rest():
    broker = PaperBroker(SYMBOLS, cash=1_000.0, params=PaperParams(fill_model="next_open", lot_size=1.0))
    assert broker.submit(buy("b", 9), bar(0, [100.0, 50.0])).orders[0].status == "accepted"  # 900.9 <= 1000
    update = broker.sync(bar(1, [200.0, 50.0], open_=[200.0, 50.0]))
    assert [(f.quantity, f.price) for f in update.fills] == [(4.0, 200.0)]  # 1000 / 200.2 -> 4 whole lots
    order = update.orders[0]
    assert (order.status, order.filled_quantity) == ("cancelled", 4.0)
    assert order.reason.startswith("insufficient cash at bar 1: 5.0 AAA left unfilled")
    assert broker.cash == pytest.approx(1_000.0 - 800.0 - 0.8, rel=1e-12)


def test_two_pending_buys_share_the_cash_in_submission_order():
    broker = PaperBroker(SYMBOLS, cash=1_000.0, params=PaperParams(fill_model="next_open", fee_rate=0.0))
    broker.submit(buy("b1", 6), bar(0, [100.0, 50.0]))
    broker.submit(buy("b2", 6), bar(0, [100.0, 50.0]))  # each fits alone, not both
    update = broker.sync(bar(1, [100.0, 50.0]))
    assert [(f.fill_id, f.quantity) for f in update.fills] == [("b1-1", 6), ("b2-1", 4.0)]
    assert [o.status for o in update.orders] == ["filled", "cancelled"]
    assert broker.cash == 0.0


def test_a_sell_beyond_what_is_still_held_at_fill_time_is_cut_to_the_position():
    broker = PaperBroker(SYMBOLS, cash=0.0, positions={"AAA": 5.0},
                         params=PaperParams(fill_model="next_open", fee_rate=0.0))
    broker.submit(sell("s1", 3), bar(0, [100.0, 50.0]))
    broker.submit(sell("s2", 3), bar(0, [100.0, 50.0]))
    update = broker.sync(bar(1, [100.0, 50.0]))
    assert [(f.fill_id, f.quantity) for f in update.fills] == [("s1-1", 3), ("s2-1", 2.0)]
    assert update.orders[1].status == "cancelled" and "insufficient position" in update.orders[1].reason
    assert broker.positions["AAA"] == 0.0


# Idempotency, cancel, queries.

def test_resubmitting_a_client_order_id_answers_with_the_order_and_places_nothing():
    broker = PaperBroker(SYMBOLS, cash=10_000.0)
    first = broker.submit(buy("b", 10), bar(0, [100.0, 50.0]))
    again = broker.submit(buy("b", 10), bar(1, [80.0, 50.0]))
    assert again.orders == first.orders and again.fills == []
    assert len(broker.fills()) == 1 and broker.positions["AAA"] == 10

    rejected = broker.submit(buy("r", 1, "ZZZ"), bar(1, [80.0, 50.0])).orders[0]
    assert broker.submit(buy("r", 1, "ZZZ"), bar(2, [80.0, 50.0])).orders == [rejected]


def test_cancel_ends_an_open_order_and_returns_a_final_one_unchanged():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=CAPPED)
    broker.submit(buy("b", 12), bar(0, [100.0, 50.0], volume=VOLUME))
    (order,) = broker.cancel("b").orders
    assert (order.status, order.filled_quantity, order.reason) == ("cancelled", 5.0, "cancelled on request")
    assert broker.cancel("b").orders == [order]
    assert broker.open_orders() == [] and broker.sync(bar(1, [100.0, 50.0], volume=VOLUME)).fills == []
    with pytest.raises(KeyError, match="nope"):
        broker.cancel("nope")


def test_get_order_and_account_are_read_only_views():
    broker = PaperBroker(SYMBOLS, cash=100.0)
    assert broker.get_order("never") is None
    account = broker.account()
    account.positions["AAA"] = 99.0
    assert broker.positions["AAA"] == 0.0


# Status moves.

def test_every_order_status_move_is_a_legal_one():
    params = PaperParams(fill_model="next_open", volume_cap=0.1, lot_size=1.0)
    broker = PaperBroker(SYMBOLS, cash=3_000.0, params=params, positions={"BBB": 20.0})
    seen = {}

    def record(update):
        for order in update.orders:
            seen.setdefault(order.client_order_id, [OrderStatus.NEW]).append(order.status)

    bars = [bar(i, [100.0 + i, 50.0], volume=[50.0, 50.0]) for i in range(5)]
    record(broker.submit(buy("gtc", 12), bars[0]))
    record(broker.submit(buy("ioc", 12, time_in_force="ioc"), bars[0]))
    record(broker.submit(buy("day", 12, time_in_force="day"), bars[0]))
    record(broker.submit(sell("sell", 12, "BBB"), bars[0]))
    record(broker.submit(buy("bad", 1, "ZZZ"), bars[0]))
    record(broker.submit(buy("limit", 1, order_type="limit", limit_price=1.0), bars[0]))
    for b in bars[1:]:
        record(broker.sync(b))
    record(broker.cancel("limit"))

    assert {s[-1] for s in seen.values()} >= {"filled", "cancelled", "expired", "rejected"}
    for cid, statuses in seen.items():
        for before, after in zip(statuses, statuses[1:]):
            assert after in ORDER_TRANSITIONS[before], (cid, statuses)


# Persistence.

def scripted_run(broker: PaperBroker, feed: ReplayFeed, restart_at: int | None = None):
    """Drive `broker` over `feed` with a fixed order script; at bar `restart_at` replace it by the broker
    its JSON state restores (as a process killed and restarted would). Returns the broker at the end."""
    while (b := feed.poll()) is not None:
        broker.sync(b)
        if b.index == restart_at:
            broker = PaperBroker.from_state(json.loads(json.dumps(broker.state())))
        k = b.index
        symbol = feed.symbols[k % 2]
        if k % 3 == 0:
            broker.submit(buy(f"b{k}", 5_000.0, symbol, time_in_force=("gtc", "day")[k % 2]), b)
        elif k % 3 == 1:
            broker.submit(sell(f"s{k}", 3_000.0, symbol), b)
        else:
            broker.submit(buy(f"l{k}", 2_000.0, symbol, order_type="limit", limit_price=float(b.close[k % 2])), b)
    return broker


def test_state_restored_mid_run_gives_the_same_fills_as_an_uninterrupted_broker():
    market = synthetic_market(n_assets=2, n_periods=30, seed=3)
    params = PaperParams(fill_model="next_open", volume_cap=0.002, slippage_bps=5.0, lot_size=1.0)
    plain = scripted_run(PaperBroker(market.tickers, cash=1e6, params=params), ReplayFeed(market, range(30)))
    restored = scripted_run(PaperBroker(market.tickers, cash=1e6, params=params), ReplayFeed(market, range(30)),
                            restart_at=14)
    # The script exercises what state() must carry: orders filled in several bars, open across the restart,
    # cancelled for cash, rejected.
    assert len(plain.fills()) > 20 and any(f.fill_id.endswith("-2") for f in plain.fills())
    assert {o.status for o in plain.orders.values()} == {"filled", "cancelled", "rejected", "accepted"}
    assert restored.fills() == plain.fills()
    assert restored.state() == plain.state()


def test_state_is_json_and_round_trips_exactly():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=CAPPED, positions={"BBB": 1.5})
    broker.submit(buy("b", 12), bar(0, [100.1, 50.0], volume=VOLUME))
    broker.submit(buy("r", 1, "ZZZ"), bar(0, [100.1, 50.0]))
    state = json.loads(json.dumps(broker.state()))
    restored = PaperBroker.from_state(state)
    assert restored.state() == broker.state()
    assert restored.open_orders() == broker.open_orders() and restored.fills() == broker.fills()
    assert restored.orders == broker.orders and restored.account() == broker.account()
    assert restored.sync(bar(1, [99.0, 50.0], volume=VOLUME)) == broker.sync(bar(1, [99.0, 50.0], volume=VOLUME))


# The ledger (hypothesis).

LEDGER_MARKET = synthetic_market(n_assets=3, n_periods=12, seed=7)
trade = st.tuples(st.integers(0, 2), st.sampled_from(("buy", "sell")),
                  st.floats(0.001, 1_000.0, allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.lists(trade, max_size=4), min_size=1, max_size=12),
       fee_rate=st.floats(0.0, 0.01), slippage_bps=st.floats(0.0, 30.0))
def test_equity_matches_an_independent_ledger_and_positions_are_the_sum_of_fills(steps, fee_rate, slippage_bps):
    params = PaperParams(fee_rate=fee_rate, slippage_bps=slippage_bps, allow_short=True)
    cash = 1e8  # more than 12 bars of 4 orders can spend: no buy is refused
    broker = PaperBroker(LEDGER_MARKET.tickers, cash=cash, params=params)
    feed = ReplayFeed(LEDGER_MARKET, range(len(steps)))
    cash_flows, units = [cash], np.zeros(3)
    for k, orders in enumerate(steps):
        b = feed.poll()
        broker.sync(b)
        for j, (i, side, quantity) in enumerate(orders):
            broker.submit(OrderRequest(f"{k}-{j}", LEDGER_MARKET.tickers[i], side, quantity), b)
            sign = 1.0 if side == "buy" else -1.0
            price = LEDGER_MARKET.close[k, i] * (1.0 + sign * slippage_bps / 1e4)
            cash_flows.append(-sign * quantity * price - fee_rate * quantity * price)
            units[i] += sign * quantity
    close = LEDGER_MARKET.close[len(steps) - 1]
    expected = math.fsum(cash_flows) + math.fsum(units * close)

    account = broker.account()
    equity = account.equity(dict(zip(LEDGER_MARKET.tickers, close)))
    assert equity == pytest.approx(expected, rel=1e-9)
    assert equity - cash == pytest.approx(expected - cash, abs=1e-5)  # the profit itself, not drowned in the cash
    for i, symbol in enumerate(LEDGER_MARKET.tickers):
        assert account.positions[symbol] == sum(f.signed_quantity for f in broker.fills() if f.symbol == symbol)
        assert account.positions[symbol] == pytest.approx(units[i], rel=1e-12, abs=1e-9)
    assert all(o.status == "filled" for o in broker.orders.values())


def test_prune_keeps_only_what_is_open_and_the_next_fill_ids_continue_after_a_restore():
    broker = PaperBroker(SYMBOLS, cash=10_000.0, params=CAPPED)
    broker.submit(buy("done", 1), bar(0, [100.0, 50.0], volume=VOLUME))
    broker.submit(buy("open", 12), bar(0, [100.0, 50.0], volume=VOLUME))  # 5 of 12 fill: the cap
    broker.prune()

    state = json.loads(json.dumps(broker.state()))
    assert [o["request"]["client_order_id"] for o in state["orders"]] == ["open"]
    assert state["fills"] == [] and state["fill_counts"] == {"open": 1}
    assert broker.get_order("done") is None and broker.fills() == []
    restored = PaperBroker.from_state(state)
    update = restored.sync(bar(1, [110.0, 50.0], volume=VOLUME))
    assert [(f.fill_id, f.quantity) for f in update.fills] == [("open-2", 5.0)]
    assert restored.positions["AAA"] == 11.0 and restored.cash == broker.cash - 5 * 110.0 * (1 + CAPPED.fee_rate)
