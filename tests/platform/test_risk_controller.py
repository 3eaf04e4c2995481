"""risk.limits and risk.controller: a hand-checkable table per limit (exact reason codes and numbers),
how limits combine (tightest, within_ceiling), and the invariants as properties (hypothesis): no approved
order breaks a limit, apply_risk_limits' targets always pass, HALT never grows a position, FLATTEN on
the paper broker ends flat and then refuses every entry. No database: plain functions over plain data."""
import dataclasses
import json
import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.live.orders import Account, OrderRequest
from engine.live.paper import PaperBroker, PaperParams
from engine.live.venue import Bar
from risk.controller import (
    APPROVED,
    KillLevel,
    RiskState,
    apply_risk_limits,
    breach,
    is_reducing,
    validate_trading_request,
)
from risk.limits import NEVER_OPEN, NO_LIMITS, Limits, TradingHours, tightest, within_ceiling

# Reproducible in CI: the same examples every run. The platform conftest's autouse fixtures only
# adjust settings, so sharing them across examples is harmless.
PROPERTY = settings(max_examples=150, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LIGHT = settings(PROPERTY, max_examples=60)  # for the properties that follow from the others
TOLERANCE = 1e-9  # the controller's float slack

# The hand-checkable account: AAA 10 x 100 long, BBB 20 x 50 short, CCC flat at 10; cash 10,000, so
# equity 10,000 and gross exposure 2,000 (0.2). NOW: Monday 2024-01-01 15:00 UTC.
SYMBOLS = ("AAA", "BBB", "CCC")
PRICES = (100.0, 50.0, 10.0)
POSITIONS = {"AAA": 10.0, "BBB": -20.0, "CCC": 0.0}
NOW = 1_704_121_200.0
MONDAY = 1_704_067_200.0  # 2024-01-01 00:00 UTC


def make_bar(prices=PRICES, symbols=SYMBOLS, time="2024-01-01T15:00:00", index=0) -> Bar:
    close = np.array(prices, dtype=np.float64)
    return Bar(index=index, time=time, symbols=tuple(symbols), open=close, high=close, low=close, close=close,
               volume=np.full(len(close), np.nan))


BAR = make_bar()


def make_state(**changes) -> RiskState:
    base = RiskState(cash=10_000.0, positions=dict(POSITIONS), equity=10_000.0, day_start_equity=10_000.0,
                     peak_equity=10_000.0, now=NOW)
    return dataclasses.replace(base, **changes)


def buy(quantity, symbol="AAA", limit_price=None):
    kind = "limit" if limit_price is not None else "market"
    return OrderRequest("o1", symbol, "buy", quantity, order_type=kind, limit_price=limit_price)


def sell(quantity, symbol="AAA", limit_price=None):
    kind = "limit" if limit_price is not None else "market"
    return OrderRequest("o1", symbol, "sell", quantity, order_type=kind, limit_price=limit_price)


WEEKDAYS_1430_2100 = TradingHours("14:30", "21:00", frozenset(range(5)))

# (limits, state changes, request, code ("" = approved), limit, value)
TABLE = [
    pytest.param(NO_LIMITS, {}, buy(1e6), "", None, None, id="no limit: anything goes"),
    # Kill switch.
    pytest.param(NO_LIMITS, {"kill_level": KillLevel.PAUSE}, sell(1), "kill_switch_pause", "pause", 9.0,
                 id="pause refuses even a reducing order"),
    pytest.param(NO_LIMITS, {"kill_level": KillLevel.HALT}, buy(1), "kill_switch_halt_not_reducing", "halt", 11.0,
                 id="halt refuses growing a long"),
    pytest.param(NO_LIMITS, {"kill_level": KillLevel.HALT}, sell(10), "", None, None, id="halt passes closing a long"),
    pytest.param(NO_LIMITS, {"kill_level": KillLevel.HALT}, sell(11), "kill_switch_halt_not_reducing", "halt", -1.0,
                 id="halt refuses flipping through zero"),
    pytest.param(NO_LIMITS, {"kill_level": KillLevel.HALT}, buy(1, "CCC"), "kill_switch_halt_not_reducing", "halt",
                 1.0, id="halt keeps flat flat"),
    pytest.param(NO_LIMITS, {"kill_level": KillLevel.FLATTEN}, buy(5, "BBB"), "", None, None,
                 id="flatten passes covering a short"),
    pytest.param(NO_LIMITS, {"kill_level": KillLevel.FLATTEN}, sell(1, "BBB"), "kill_switch_flatten_not_reducing",
                 "flatten", -21.0, id="flatten refuses growing a short"),
    # Allowed symbols.
    pytest.param(Limits(allowed_symbols=frozenset({"AAA"})), {}, sell(1, "BBB"), "symbol_not_allowed", ["AAA"],
                 "BBB", id="symbol not allowed"),
    pytest.param(Limits(allowed_symbols=frozenset({"AAA"})), {}, buy(1, "BBB"), "", None, None,
                 id="a holding of a symbol not allowed may be reduced"),
    pytest.param(Limits(allowed_symbols=frozenset({"AAA"})), {}, buy(1), "", None, None, id="symbol allowed"),
    # Trading hours (14:30-21:00 UTC, Monday to Friday).
    pytest.param(Limits(trading_hours=WEEKDAYS_1430_2100), {}, buy(1), "", None, None, id="monday 15:00 is open"),
    pytest.param(Limits(trading_hours=WEEKDAYS_1430_2100), {"now": NOW + 5 * 86400}, buy(1), "outside_trading_hours",
                 "14:30-21:00 UTC Mon,Tue,Wed,Thu,Fri", "2024-01-06T15:00:00+00:00", id="saturday is closed"),
    pytest.param(Limits(trading_hours=WEEKDAYS_1430_2100), {"now": MONDAY + 21 * 3600}, buy(1),
                 "outside_trading_hours", "14:30-21:00 UTC Mon,Tue,Wed,Thu,Fri", "2024-01-01T21:00:00+00:00",
                 id="the end is not open"),
    pytest.param(Limits(trading_hours=WEEKDAYS_1430_2100), {"now": MONDAY + 14.5 * 3600}, buy(1), "", None, None,
                 id="the start is open"),
    # Price band (5%): the limit price against the last trade (the close, 100).
    pytest.param(Limits(price_band_pct=5), {}, buy(1, limit_price=105.0), "", None, None, id="band: 5% passes"),
    pytest.param(Limits(price_band_pct=5), {}, buy(1, limit_price=105.5), "price_band", 5, 5.5, id="band: 5.5% not"),
    pytest.param(Limits(price_band_pct=5), {}, sell(1, limit_price=90.0), "price_band", 5, 10.0,
                 id="band: a reducing order too"),
    pytest.param(Limits(price_band_pct=5), {}, buy(1, "DDD", limit_price=10.0), "no_price", "a price > 0", None,
                 id="band: no last trade"),
    pytest.param(Limits(max_order_notional=1000), {}, buy(1, "DDD"), "no_price", "a price > 0", None,
                 id="a market order with no price cannot be valued"),
    # Max order notional (1,000): quantity x expected price.
    pytest.param(Limits(max_order_notional=1000), {}, buy(10), "", None, None, id="notional: 1,000 passes"),
    pytest.param(Limits(max_order_notional=1000), {}, buy(10.01), "max_order_notional", 1000, 1001.0,
                 id="notional: 1,001 not"),
    pytest.param(Limits(max_order_notional=1000), {}, buy(100, "CCC", limit_price=10.5), "max_order_notional", 1000,
                 1050.0, id="notional: at the limit price"),
    pytest.param(Limits(max_order_notional=1000), {}, buy(1, "DDD", limit_price=5.0), "", None, None,
                 id="notional: a limit order needs no last trade"),
    # Max position units (15), on the position after the order.
    pytest.param(Limits(max_position_units=15), {}, buy(5), "", None, None, id="units: 15 passes"),
    pytest.param(Limits(max_position_units=15), {}, buy(6), "max_position_units", 15, 16.0, id="units: 16 not"),
    pytest.param(Limits(max_position_units=15), {}, buy(1, "BBB"), "", None, None,
                 id="units: reducing an oversize short passes"),
    pytest.param(Limits(max_position_units=15), {}, sell(1, "BBB"), "max_position_units", 15, 21.0,
                 id="units: growing an oversize short not"),
    pytest.param(Limits(max_position_units=15), {}, buy(35, "BBB"), "", None, None, id="units: flip to +15 passes"),
    pytest.param(Limits(max_position_units=15), {}, buy(36, "BBB"), "max_position_units", 15, 16.0,
                 id="units: flip to +16 not"),
    # Max position fraction (0.15 of equity 10,000 = 1,500).
    pytest.param(Limits(max_position_fraction=0.15), {}, buy(5), "", None, None, id="fraction: 0.15 passes"),
    pytest.param(Limits(max_position_fraction=0.15), {}, buy(6), "max_position_fraction", 0.15, 0.16,
                 id="fraction: 0.16 not"),
    pytest.param(Limits(max_position_fraction=0.15), {}, buy(5, limit_price=102.0), "max_position_fraction", 0.15,
                 0.153, id="fraction: valued at the limit price"),
    pytest.param(Limits(max_position_fraction=0.15), {"equity": 0.0}, buy(1), "max_position_fraction", 0.15,
                 math.inf, id="fraction: no equity, no growth"),
    # Max gross exposure (0.3 of 10,000 = 3,000; 2,000 held).
    pytest.param(Limits(max_gross_exposure=0.3), {}, buy(10), "", None, None, id="gross: 0.30 passes"),
    pytest.param(Limits(max_gross_exposure=0.3), {}, buy(11), "max_gross_exposure", 0.3, 0.31, id="gross: 0.31 not"),
    pytest.param(Limits(max_gross_exposure=0.1), {}, buy(5, "BBB"), "", None, None,
                 id="gross: reducing passes over the limit"),
    # Daily loss: from the day's start.
    pytest.param(Limits(daily_loss_money=500), {"day_start_equity": 10_600.0}, buy(1), "daily_loss", 500, 600.0,
                 id="daily loss: 600 of 500"),
    pytest.param(Limits(daily_loss_money=500), {"day_start_equity": 10_600.0}, sell(1), "", None, None,
                 id="daily loss: reducing passes"),
    pytest.param(Limits(daily_loss_money=500), {"day_start_equity": 10_500.0}, buy(1), "", None, None,
                 id="daily loss: 500 of 500 passes"),
    pytest.param(Limits(daily_loss_pct=5), {"day_start_equity": 10_600.0}, buy(1), "daily_loss", 5, 600 / 106,
                 id="daily loss: 5.66% of 5%"),
    pytest.param(Limits(daily_loss_pct=5), {"day_start_equity": 10_500.0}, buy(1), "", None, None,
                 id="daily loss: 4.76% of 5% passes"),
    # Max drawdown: from the equity peak.
    pytest.param(Limits(max_drawdown_money=1000), {"peak_equity": 11_500.0}, buy(1), "max_drawdown", 1000, 1500.0,
                 id="drawdown: 1,500 of 1,000"),
    pytest.param(Limits(max_drawdown_pct=10), {"peak_equity": 11_000.0}, buy(1), "", None, None,
                 id="drawdown: 9.09% of 10% passes"),
    pytest.param(Limits(max_drawdown_pct=10), {"peak_equity": 12_000.0}, buy(1), "max_drawdown", 10, 2000 / 120,
                 id="drawdown: 16.7% of 10%"),
    pytest.param(Limits(max_drawdown_pct=10), {"peak_equity": 12_000.0}, sell(10), "", None, None,
                 id="drawdown: closing passes"),
    # Orders per minute (3): times within the last 60 seconds count.
    pytest.param(Limits(max_orders_per_minute=3), {"recent_order_times": (NOW - 10, NOW - 20)}, buy(1), "", None,
                 None, id="rate: the third passes"),
    pytest.param(Limits(max_orders_per_minute=3), {"recent_order_times": (NOW - 10, NOW - 20, NOW - 59)}, buy(1),
                 "max_orders_per_minute", 3, 4, id="rate: the fourth not"),
    pytest.param(Limits(max_orders_per_minute=3), {"recent_order_times": (NOW - 10, NOW - 20, NOW - 60)}, sell(1),
                 "", None, None, id="rate: a minute ago is out of the window"),
    # Open orders (2).
    pytest.param(Limits(max_open_orders=2), {"open_orders": 1}, buy(1), "", None, None, id="open: the second passes"),
    pytest.param(Limits(max_open_orders=2), {"open_orders": 2}, sell(1), "max_open_orders", 2, 3,
                 id="open: the third not"),
    # The first check that fails names the refusal.
    pytest.param(Limits(allowed_symbols=frozenset()), {"kill_level": KillLevel.PAUSE}, buy(1), "kill_switch_pause",
                 "pause", 11.0, id="order: kill switch before symbols"),
    pytest.param(Limits(max_order_notional=100, max_position_units=1), {}, buy(5), "max_order_notional", 100, 500.0,
                 id="order: notional before units"),
    pytest.param(Limits(max_position_units=1, max_gross_exposure=0.01), {}, buy(5), "max_position_units", 1, 15.0,
                 id="order: units before gross"),
    pytest.param(Limits(daily_loss_money=1, max_open_orders=1), {"day_start_equity": 20_000.0, "open_orders": 5},
                 buy(1), "daily_loss", 1, 10_000.0, id="order: loss before open orders"),
]


@pytest.mark.parametrize("limits, changes, request_, code, limit, value", TABLE)
def test_validate_trading_request_by_hand(limits, changes, request_, code, limit, value):
    decision = validate_trading_request(request_, limits=limits, account=make_state(**changes), market=BAR)
    assert decision.approved == (code == "")
    assert decision.code == code
    if code:
        assert decision.message
        assert decision.values["limit"] == limit
        assert decision.values["value"] == (value if value is None or isinstance(value, str) else pytest.approx(value))


def test_trading_hours_read_the_bars_time_when_the_state_has_no_clock():
    limits = Limits(trading_hours=WEEKDAYS_1430_2100)
    state = make_state(now=None)
    early, local = make_bar(time="2024-01-01T14:29:00"), make_bar(time="2024-01-01T16:00:00+01:00")
    assert validate_trading_request(buy(1), limits=limits, account=state, market=early).code == "outside_trading_hours"
    assert validate_trading_request(buy(1), limits=limits, account=state, market=local).approved


def test_a_plain_account_is_checked_with_nothing_known_beyond_it():
    account = Account(cash=10_000.0, positions=dict(POSITIONS))
    assert validate_trading_request(buy(1e6, "DDD"), limits=NO_LIMITS, account=account, market=BAR) is APPROVED
    # Equity marks are equity now: a loss limit has nothing to fall from.
    limits = Limits(daily_loss_money=1, max_drawdown_pct=1, max_order_notional=1000)
    assert validate_trading_request(buy(10), limits=limits, account=account, market=BAR).approved
    assert validate_trading_request(buy(11), limits=limits, account=account, market=BAR).code == "max_order_notional"
    assert breach(limits, account) is None


def test_a_position_the_bar_does_not_price_leaves_exposure_unknown_and_refuses_growth():
    state = make_state(positions={**POSITIONS, "DDD": 5.0})
    limits = Limits(max_gross_exposure=10)
    refused = validate_trading_request(buy(1), limits=limits, account=state, market=BAR)
    assert refused.code == "max_gross_exposure" and math.isnan(refused.values["value"])
    assert validate_trading_request(sell(1), limits=limits, account=state, market=BAR).approved
    # DDD's own order is valued at its limit price; the rest is priced.
    assert validate_trading_request(buy(1, "DDD", limit_price=10.0), limits=limits, account=state, market=BAR).approved


def test_risk_state_from_an_account_defaults_to_nothing_known():
    state = RiskState.from_account(Account(cash=10_000.0, positions=dict(POSITIONS)), dict(zip(SYMBOLS, PRICES)),
                                   peak_equity=12_000.0)
    assert (state.equity, state.day_start_equity, state.peak_equity) == (10_000.0, 10_000.0, 12_000.0)
    assert (state.kill_level, state.open_orders, state.recent_order_times, state.now) == (KillLevel.NONE, 0, (), None)


@pytest.mark.parametrize("held, side, quantity, reducing", [
    (10, "sell", 10, True), (10, "sell", 4, True), (10, "sell", 11, False), (10, "buy", 1, False),
    (-5, "buy", 5, True), (-5, "buy", 6, False), (-5, "sell", 1, False), (0, "buy", 1, False), (0, "sell", 1, False),
])
def test_is_reducing_by_hand(held, side, quantity, reducing):
    request = OrderRequest("o1", "AAA", side, quantity)
    assert is_reducing(request, {"AAA": held}) is reducing


@pytest.mark.parametrize("limits, changes, level", [
    (Limits(daily_loss_money=500), {"day_start_equity": 10_600.0}, KillLevel.HALT),
    (Limits(daily_loss_money=500, breach_level="flatten"), {"day_start_equity": 10_600.0}, KillLevel.FLATTEN),
    (Limits(max_drawdown_pct=10, breach_level="pause"), {"peak_equity": 12_000.0}, KillLevel.PAUSE),
    (Limits(daily_loss_money=500, max_drawdown_pct=10), {"day_start_equity": 10_400.0, "peak_equity": 11_000.0}, None),
    (Limits(max_order_notional=1), {"day_start_equity": 1e9}, None),
])
def test_breach_names_the_level_the_limits_trip(limits, changes, level):
    assert breach(limits, make_state(**changes)) == level


# apply_risk_limits by hand.

@pytest.mark.parametrize("limits, changes, targets, expected", [
    (Limits(max_position_units=15), {}, {"AAA": 30.0, "BBB": -30.0, "CCC": 3.0},
     {"AAA": 15.0, "BBB": -15.0, "CCC": 3.0}),
    (Limits(max_position_fraction=0.2), {}, {"AAA": 50.0, "CCC": -500.0}, {"AAA": 20.0, "CCC": -200.0}),
    (Limits(max_order_notional=500), {}, {"AAA": 30.0, "BBB": 0.0}, {"AAA": 15.0, "BBB": -10.0}),
    (Limits(allowed_symbols=frozenset({"AAA"})), {}, {"AAA": 1.0, "BBB": -10.0, "CCC": 4.0},
     {"AAA": 1.0, "BBB": -20.0, "CCC": 0.0}),
    (NO_LIMITS, {"kill_level": KillLevel.PAUSE}, {"AAA": 0.0, "CCC": 4.0}, {"AAA": 10.0, "CCC": 0.0}),
    (NO_LIMITS, {"kill_level": KillLevel.HALT}, {"AAA": 30.0, "BBB": 5.0, "CCC": 4.0},
     {"AAA": 10.0, "BBB": 0.0, "CCC": 0.0}),
    (NO_LIMITS, {"kill_level": KillLevel.HALT}, {"AAA": 4.0, "BBB": -25.0}, {"AAA": 4.0, "BBB": -20.0}),
    (NO_LIMITS, {"kill_level": KillLevel.FLATTEN}, {"CCC": 4.0}, {"AAA": 0.0, "BBB": 0.0, "CCC": 0.0}),
    (Limits(max_order_notional=500), {"kill_level": KillLevel.FLATTEN}, {}, {"AAA": 5.0, "BBB": -10.0}),
    (Limits(daily_loss_money=500), {"day_start_equity": 11_000.0}, {"AAA": 30.0, "BBB": -10.0},
     {"AAA": 10.0, "BBB": -10.0}),
    (Limits(trading_hours=WEEKDAYS_1430_2100), {"now": NOW + 5 * 86400}, {"AAA": 30.0}, {"AAA": 10.0}),
    # One order left this minute: the reducing one goes first.
    (Limits(max_orders_per_minute=2), {"recent_order_times": (NOW - 1,)}, {"AAA": 30.0, "BBB": -10.0},
     {"AAA": 10.0, "BBB": -10.0}),
    (Limits(max_open_orders=2), {"open_orders": 2}, {"AAA": 30.0}, {"AAA": 10.0}),
    # 3,000 of gross: BBB's 1,000 stays, so AAA may grow to 2,000 (20 units) of the 3,000 it asks.
    (Limits(max_gross_exposure=0.3), {}, {"AAA": 30.0}, {"AAA": 20.0}),
    # 4,000 of gross: AAA flips 10 -> -30 (counted at 1,000 until it is 10 short, then at its size), CCC grows
    # 0 -> 200; at k = 2/3 BBB's 1,000 + AAA's 1,667 + CCC's 1,333 make 4,000.
    (Limits(max_gross_exposure=0.4), {}, {"AAA": -30.0, "CCC": 200.0}, {"AAA": -50 / 3, "CCC": 400 / 3}),
])
def test_apply_risk_limits_by_hand(limits, changes, targets, expected):
    out = apply_risk_limits(targets, limits=limits, account=make_state(**changes), market=BAR)
    assert out == pytest.approx(expected, rel=1e-9)


def test_apply_risk_limits_holds_a_target_that_is_not_a_number():
    out = apply_risk_limits({"AAA": math.nan, "BBB": math.inf}, limits=NO_LIMITS, account=make_state(), market=BAR)
    assert out == {"AAA": 10.0, "BBB": -20.0}


def test_apply_risk_limits_with_no_limit_changes_nothing():
    targets = {"AAA": -3.0, "BBB": 7.0, "CCC": 1e6}
    assert apply_risk_limits(targets, limits=NO_LIMITS, account=make_state(), market=BAR) == targets


# Limits: validation, JSON, tightest, ceilings.

@pytest.mark.parametrize("field, value", [
    ("max_order_notional", 0), ("max_order_notional", -1.0), ("max_order_notional", math.nan),
    ("max_position_fraction", math.inf), ("max_position_units", True), ("max_gross_exposure", "2"),
    ("daily_loss_pct", 100.5), ("max_drawdown_pct", 0.0), ("daily_loss_money", -5),
    ("max_orders_per_minute", 0), ("max_open_orders", 1.5), ("price_band_pct", -1),
    ("allowed_symbols", "AAA"), ("allowed_symbols", {""}), ("breach_level", "stop"), ("trading_hours", "09:00-17:00"),
])
def test_limits_reject_a_bad_value_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        Limits(**{field: value})


@pytest.mark.parametrize("start, end, weekdays, field", [
    ("9:00", "17:00", range(5), "start"), ("09:00", "24:01", range(5), "end"), ("09:60", "17:00", range(5), "start"),
    ("17:00", "09:00", range(5), "before end"), ("09:00", "17:00", [7], "weekdays"),
])
def test_trading_hours_reject_a_bad_window(start, end, weekdays, field):
    with pytest.raises(ValueError, match=field):
        TradingHours(start, end, frozenset(weekdays))


def test_limits_from_dict_refuses_an_unknown_limit():
    with pytest.raises(ValueError, match="max_order_notionel"):
        Limits.from_dict({"max_order_notionel": 5})


EVERY_LIMIT = Limits(max_order_notional=5_000, max_position_fraction=0.25, max_position_units=100,
                     max_gross_exposure=1.5, daily_loss_money=1_000, daily_loss_pct=3, max_drawdown_money=2_500,
                     max_drawdown_pct=10, max_orders_per_minute=30, max_open_orders=10, price_band_pct=5,
                     allowed_symbols=frozenset({"AAA", "BBB"}), trading_hours=WEEKDAYS_1430_2100,
                     breach_level="flatten")


def test_limits_round_trip_through_json():
    for limits in (NO_LIMITS, EVERY_LIMIT, Limits(trading_hours=NEVER_OPEN, allowed_symbols=frozenset())):
        assert Limits.from_dict(json.loads(json.dumps(limits.as_dict()))) == limits


def test_tightest_takes_the_smallest_number_the_common_symbols_and_hours_and_the_severest_level():
    a = Limits(max_order_notional=1_000, max_open_orders=5, allowed_symbols=frozenset({"AAA", "BBB"}),
               trading_hours=TradingHours("09:00", "17:00", frozenset(range(5))), breach_level="pause")
    b = Limits(max_order_notional=2_000, max_position_units=7, allowed_symbols=frozenset({"BBB", "CCC"}),
               trading_hours=TradingHours("12:00", "20:00"), breach_level="flatten")
    c = Limits(max_open_orders=3)
    assert tightest(a, b, c) == Limits(max_order_notional=1_000, max_position_units=7, max_open_orders=3,
                                       allowed_symbols=frozenset({"BBB"}),
                                       trading_hours=TradingHours("12:00", "17:00", frozenset(range(5))),
                                       breach_level="flatten")
    assert tightest() == NO_LIMITS
    assert tightest(c, NO_LIMITS) == c


def test_tightest_of_windows_that_do_not_meet_is_never_open():
    morning = Limits(trading_hours=TradingHours("08:00", "12:00"))
    evening = Limits(trading_hours=TradingHours("13:00", "18:00"))
    weekend = Limits(trading_hours=TradingHours("08:00", "18:00", frozenset({5, 6})))
    weekdays = Limits(trading_hours=TradingHours("08:00", "18:00", frozenset(range(5))))
    assert tightest(morning, evening).trading_hours == NEVER_OPEN
    assert tightest(weekend, weekdays).trading_hours == NEVER_OPEN
    refused = validate_trading_request(buy(1), limits=tightest(morning, evening), account=make_state(), market=BAR)
    assert refused.code == "outside_trading_hours"


CEILING = Limits(max_order_notional=10_000, daily_loss_pct=5, allowed_symbols=frozenset({"AAA", "BBB"}),
                 trading_hours=TradingHours("08:00", "20:00", frozenset(range(5))), breach_level="halt")


@pytest.mark.parametrize("limits, fields", [
    (Limits(max_order_notional=5_000, daily_loss_pct=5, allowed_symbols=frozenset({"AAA"}),
            trading_hours=TradingHours("09:00", "17:00", frozenset({0})), breach_level="flatten"), []),
    (Limits(max_order_notional=20_000, daily_loss_pct=5, allowed_symbols=frozenset({"AAA"}),
            trading_hours=CEILING.trading_hours), ["max_order_notional"]),
    (NO_LIMITS, ["max_order_notional", "daily_loss_pct", "allowed_symbols", "trading_hours"]),
    (dataclasses.replace(CEILING, allowed_symbols=frozenset({"AAA", "CCC"}), breach_level="pause",
                         trading_hours=TradingHours("07:00", "20:00", frozenset(range(5)))),
     ["allowed_symbols", "trading_hours", "breach_level"]),
    (dataclasses.replace(CEILING, trading_hours=TradingHours("08:00", "20:00")), ["trading_hours"]),
])
def test_within_ceiling_names_every_limit_looser_than_the_ceiling(limits, fields):
    problems = within_ceiling(limits, CEILING)
    assert [field for field, _ in problems] == fields
    assert all(message for _, message in problems)


def test_within_ceiling_messages_say_by_how_much():
    assert within_ceiling(Limits(max_order_notional=20_000), Limits(max_order_notional=10_000)) == [
        ("max_order_notional", "20000 is above the system-wide ceiling of 10000")]
    assert within_ceiling(NO_LIMITS, Limits(max_open_orders=4)) == [
        ("max_open_orders", "must be set: the system-wide ceiling is 4")]
    assert within_ceiling(Limits(allowed_symbols=frozenset({"AAA", "ZZZ"})), CEILING)[2] == (
        "allowed_symbols", "allows symbols the system-wide ceiling does not: ZZZ")


# -- properties ---------------------------------------------------------------------------------------

P_SYMBOLS = ("AAA", "BBB", "CCC", "DDD")


def maybe(strategy):
    return st.none() | strategy


def money(low, high):
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


@st.composite
def trading_hours(draw):
    # Mostly long windows on most days, so that they are open often enough to let orders reach the other checks.
    start = draw(st.integers(0, 6 * 60))
    end = draw(st.integers(18 * 60, 24 * 60))
    days = draw(st.frozensets(st.integers(0, 6), min_size=5))
    return TradingHours(f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}", days)


@st.composite
def limits_(draw, hours=True):
    return Limits(
        max_order_notional=draw(maybe(money(10, 20_000))),
        max_position_fraction=draw(maybe(money(0.01, 2))),
        max_position_units=draw(maybe(money(0.5, 80))),
        max_gross_exposure=draw(maybe(money(0.1, 4))),
        daily_loss_money=draw(maybe(money(10, 5_000))),
        daily_loss_pct=draw(maybe(money(0.5, 50))),
        max_drawdown_money=draw(maybe(money(10, 5_000))),
        max_drawdown_pct=draw(maybe(money(0.5, 50))),
        max_orders_per_minute=draw(maybe(st.integers(1, 12))),
        max_open_orders=draw(maybe(st.integers(1, 12))),
        price_band_pct=draw(maybe(money(0.1, 20))),
        allowed_symbols=draw(maybe(st.frozensets(st.sampled_from(P_SYMBOLS)))),
        trading_hours=draw(maybe(trading_hours())) if hours else None,
        breach_level=draw(st.sampled_from(("pause", "halt", "flatten"))),
    )


# Some positions flat, some long, some short; DDD is sometimes missing from the bar.
positions_ = st.lists(st.just(0.0) | money(-60, -0.01) | money(0.01, 60), min_size=4, max_size=4)
prices_ = st.lists(money(1, 1_000), min_size=4, max_size=4)


# The kill switch is off in most states, so that most orders reach the other checks.
MOSTLY_OFF = (KillLevel.NONE,) * 5 + (KillLevel.PAUSE, KillLevel.HALT, KillLevel.FLATTEN)


@st.composite
def market_and_state(draw, kill_levels=MOSTLY_OFF):
    prices = draw(prices_)
    symbols = P_SYMBOLS if draw(st.booleans()) else P_SYMBOLS[:3]
    market = make_bar(prices[:len(symbols)], symbols)
    positions = dict(zip(symbols, draw(positions_)))
    cash = draw(money(-5_000, 60_000))
    equity = cash + sum(q * p for q, p in zip(positions.values(), prices))
    now = MONDAY + 12 * 3600 + draw(st.floats(0, 7 * 86400))  # from Monday noon: most windows are open
    state = RiskState(cash=cash, positions=positions, equity=equity,
                      day_start_equity=equity + draw(money(-500, 1_000)),
                      peak_equity=max(equity, equity + draw(money(0, 2_000))),
                      kill_level=draw(st.sampled_from(kill_levels)), open_orders=draw(st.integers(0, 4)),
                      recent_order_times=tuple(now - t for t in draw(st.lists(st.floats(0, 90), max_size=4))), now=now)
    return market, state


@st.composite
def orders_(draw, market, min_size=1, max_size=12):
    """Random requests: market or limit (within 30% of the close), on the bar's symbols and one it lacks."""
    requests = []
    for i in range(draw(st.integers(min_size, max_size))):
        symbol = draw(st.sampled_from(P_SYMBOLS + ("ZZZ",)))
        side, quantity = draw(st.sampled_from(("buy", "sell"))), draw(money(0.01, 80))
        if draw(st.booleans()):
            requests.append(OrderRequest(f"o{i}", symbol, side, quantity))
            continue
        last = dict(zip(market.symbols, market.close.tolist())).get(symbol, 100.0)
        limit_price = last * (1 + draw(st.floats(-0.3, 0.3)))
        requests.append(OrderRequest(f"o{i}", symbol, side, quantity, order_type="limit", limit_price=limit_price))
    return requests


def over(value, limit):
    return not value <= limit * (1 + TOLERANCE)


def fall_over(start, equity, money_limit, pct_limit):
    fall = start - equity
    if money_limit is not None and over(fall, money_limit):
        return True
    return pct_limit is not None and (start <= 0 and fall > 0 or start > 0 and over(fall / start * 100, pct_limit))


def limit_of(limits, name):
    """A limit's value, with None (not set) as no bound at all."""
    value = getattr(limits, name)
    return math.inf if value is None else value


def broken_limits(request, limits, state, market):
    """Every limit `request` would break if it went through, worked out from the definitions in the issue,
    independently of the controller's code."""
    prices = dict(zip(market.symbols, market.close.tolist()))
    last = prices.get(request.symbol)
    price = request.limit_price if request.order_type == "limit" else last
    before = state.positions.get(request.symbol, 0.0)
    after = before + request.signed_quantity
    grows = not (before != 0 and abs(after) <= abs(before) and after * before >= 0)
    day, seconds = divmod(state.now - MONDAY, 86400)
    hours, allowed = limits.trading_hours, limits.allowed_symbols
    broken = {
        "kill switch": state.kill_level == KillLevel.PAUSE or (state.kill_level >= KillLevel.HALT and grows),
        "allowed symbols": grows and allowed is not None and request.symbol not in allowed,
        "trading hours": hours is not None and not hours.is_open(int(day) % 7, int(seconds // 60)),
        "orders per minute": sum(1 for t in state.recent_order_times if t > state.now - 60) + 1
        > limit_of(limits, "max_orders_per_minute"),
        "open orders": state.open_orders + 1 > limit_of(limits, "max_open_orders"),
    }
    valued = (limits.max_order_notional, limits.max_position_fraction, limits.max_gross_exposure)
    if price is None and any(v is not None for v in valued) or last is None and limits.price_band_pct:
        broken["unvalued"] = True
    else:
        broken.update(valued_breaks(request, limits, state, prices, price, after, grows))
    return {name for name, yes in broken.items() if yes}


def valued_breaks(request, limits, state, prices, price, after, grows):
    """The limits that need the order's price (known here, wherever one of them is set)."""
    def ratio(amount):
        return amount / state.equity if state.equity > 0 else math.inf

    def broken(name, value):
        return getattr(limits, name) is not None and over(value(), getattr(limits, name))

    # A position with no price leaves the gross exposure unknown (NaN), which counts as too much.
    others = sum(abs(q) * prices.get(s, math.nan) for s, q in state.positions.items() if q and s != request.symbol)
    last = prices.get(request.symbol)
    return {
        "price band": broken("price_band_pct", lambda: abs(price - last) / last * 100),
        "order notional": broken("max_order_notional", lambda: request.quantity * price),
        "position units": grows and broken("max_position_units", lambda: abs(after)),
        "position fraction": grows and broken("max_position_fraction", lambda: ratio(abs(after) * price)),
        "gross exposure": grows and broken("max_gross_exposure", lambda: ratio(others + abs(after) * price)),
        "daily loss": grows and fall_over(state.day_start_equity, state.equity, limits.daily_loss_money,
                                          limits.daily_loss_pct),
        "drawdown": grows and fall_over(state.peak_equity, state.equity, limits.max_drawdown_money,
                                        limits.max_drawdown_pct),
    }


def filled(state: RiskState, request: OrderRequest) -> RiskState:
    """The state once `request` has filled at its expected price (equity unchanged) and is counted as sent
    and still open."""
    positions = {**state.positions, request.symbol: state.positions.get(request.symbol, 0.0) + request.signed_quantity}
    return dataclasses.replace(state, positions=positions, open_orders=state.open_orders + 1,
                               recent_order_times=(*state.recent_order_times, state.now))


@PROPERTY
@given(data=st.data())
def test_no_approved_order_breaks_a_limit(data):
    market, state = data.draw(market_and_state())
    limits = data.draw(limits_())
    for request in data.draw(orders_(market)):
        decision = validate_trading_request(request, limits=limits, account=state, market=market)
        broken = broken_limits(request, limits, state, market)
        assert decision.approved == (not broken), (decision, broken)
        if decision.approved:
            state = filled(state, request)
        state = dataclasses.replace(state, now=state.now + data.draw(st.floats(0, 30)))


def orders_for(targets: dict[str, float], positions: dict[str, float], shuffle: random.Random) -> list[OrderRequest]:
    """Market orders from `positions` to `targets`: the reducing ones first, then the rest, each group in
    a random order (apply_risk_limits promises any order within each group passes)."""
    reducing, others = [], []
    for symbol, target in targets.items():
        held = positions.get(symbol, 0.0)
        if target == held:
            continue
        request = OrderRequest(f"t-{symbol}", symbol, "buy" if target > held else "sell", abs(target - held))
        (reducing if is_reducing(request, positions) else others).append(request)
    shuffle.shuffle(reducing)
    shuffle.shuffle(others)
    return reducing + others


@PROPERTY
@given(data=st.data())
def test_apply_risk_limits_output_always_passes_validation(data):
    market, state = data.draw(market_and_state())
    limits = data.draw(limits_())
    targets = {s: data.draw(money(-150, -0.01) | money(0.01, 150))
               for s in data.draw(st.sets(st.sampled_from(P_SYMBOLS), min_size=2))}
    out = apply_risk_limits(targets, limits=limits, account=state, market=market)
    for request in orders_for(out, state.positions, data.draw(st.randoms(use_true_random=False))):
        decision = validate_trading_request(request, limits=limits, account=state, market=market)
        assert decision.approved, (request, decision)
        state = filled(state, request)


@st.composite
def closing_orders(draw, market, positions):
    """Orders against the positions held, most of them shrinking one (some by more than it holds)."""
    requests = []
    for i in range(draw(st.integers(1, 12))):
        symbol = draw(st.sampled_from(market.symbols))
        held = positions.get(symbol, 0.0)
        closing = draw(st.sampled_from((True, True, False)))
        side = "sell" if (held > 0) == closing else "buy"
        quantity = max(abs(held) * draw(st.floats(0.01, 1.5)), 0.01)
        requests.append(OrderRequest(f"c{i}", symbol, side, quantity))
    return requests


@settings(PROPERTY, max_examples=100)
@given(data=st.data())
def test_under_halt_no_approved_order_grows_a_position(data):
    market, state = data.draw(market_and_state(kill_levels=(KillLevel.HALT, KillLevel.FLATTEN)))
    limits = data.draw(limits_())
    requests = data.draw(closing_orders(market, state.positions)) + data.draw(orders_(market, max_size=4))
    for request in requests:
        before = state.positions.get(request.symbol, 0.0)
        if validate_trading_request(request, limits=limits, account=state, market=market).approved:
            after = before + request.signed_quantity
            assert abs(after) <= abs(before) and after * before >= 0, (request, before)
            state = filled(state, request)


@LIGHT
@given(data=st.data())
def test_tightest_approves_only_what_every_one_of_its_limits_approves(data):
    market, state = data.draw(market_and_state())
    a, b = data.draw(limits_()), data.draw(limits_())
    both = tightest(a, b)
    for request in data.draw(orders_(market, max_size=4)):
        if validate_trading_request(request, limits=both, account=state, market=market).approved:
            assert validate_trading_request(request, limits=a, account=state, market=market).approved
            assert validate_trading_request(request, limits=b, account=state, market=market).approved


@LIGHT
@given(limits=limits_())
def test_every_limits_round_trips_through_json(limits):
    assert Limits.from_dict(json.loads(json.dumps(limits.as_dict()))) == limits


NO_FEE_SHORTS = PaperParams(fill_model="close", fee_rate=0.0, allow_short=True)
FLATTEN_ROUNDS = 60


@PROPERTY
@given(data=st.data())
def test_flatten_on_the_paper_broker_ends_flat_and_then_refuses_every_entry(data):
    """FLATTEN's targets, made into reducing orders and sent to the paper broker round after round (a
    minute apart, so the rate limit lets more through), leave every position at zero; after that every
    entry is refused until the kill switch is lifted. No trading hours here: FLATTEN waits for the
    market to open, which these rounds do not model."""
    prices = data.draw(prices_)
    market = make_bar(prices, P_SYMBOLS)
    broker = PaperBroker(P_SYMBOLS, cash=1e6, params=NO_FEE_SHORTS,
                         positions=dict(zip(P_SYMBOLS, data.draw(st.lists(st.just(0.0) | money(-20, 20),
                                                                           min_size=4, max_size=4)))))
    limits = dataclasses.replace(data.draw(limits_(hours=False)),
                                 max_order_notional=data.draw(maybe(money(2_000, 20_000))),
                                 max_orders_per_minute=data.draw(maybe(st.integers(2, 12))))
    now, sent = MONDAY, []
    for round_ in range(FLATTEN_ROUNDS):
        account = broker.account()
        if not any(account.positions.values()):
            break
        state = RiskState.from_account(account, market.prices(), kill_level=KillLevel.FLATTEN, now=now,
                                       recent_order_times=tuple(t for t in sent if t > now - 60))
        targets = apply_risk_limits({}, limits=limits, account=state, market=market)
        for request in orders_for(targets, account.positions, random.Random(round_)):
            request = dataclasses.replace(request, client_order_id=f"r{round_}-{request.symbol}")
            assert is_reducing(request, state.positions)
            decision = validate_trading_request(request, limits=limits, account=state, market=market)
            assert decision.approved, decision
            broker.submit(request, market)
            state, sent = filled(state, request), [*sent, now]
        now += 61
    assert broker.account().positions == dict.fromkeys(P_SYMBOLS, 0.0)

    flat = RiskState.from_account(broker.account(), market.prices(), kill_level=KillLevel.FLATTEN, now=now)
    for request in data.draw(orders_(market, max_size=6)):
        decision = validate_trading_request(request, limits=limits, account=flat, market=market)
        assert decision.code == "kill_switch_flatten_not_reducing"
    lifted = dataclasses.replace(flat, kill_level=KillLevel.NONE)
    assert validate_trading_request(buy(1e-3), limits=NO_LIMITS, account=lifted, market=market).approved


def test_apply_risk_limits_counts_a_flip_at_its_old_size_until_it_is_done():
    """AAA flips from 10 toward -5 while CCC grows from 0 to 200, under 3,000 of gross (BBB holds 1,000).
    Whichever goes first, AAA's 1,000 may still be held when CCC's order is checked: CCC gets 1,000 of
    room, half what it asks, and both moves are halved (AAA to 2.5, CCC to 100)."""
    limits, state = Limits(max_gross_exposure=0.3), make_state()
    out = apply_risk_limits({"AAA": -5.0, "CCC": 200.0}, limits=limits, account=state, market=BAR)
    assert out == pytest.approx({"AAA": 2.5, "CCC": 100.0}, rel=1e-9)
    for first, second in ((sell(7.5), buy(out["CCC"], "CCC")), (buy(out["CCC"], "CCC"), sell(7.5))):
        assert validate_trading_request(first, limits=limits, account=state, market=BAR).approved
        after = filled(state, first)
        assert validate_trading_request(second, limits=limits, account=after, market=BAR).approved
