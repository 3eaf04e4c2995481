"""ExchangeBroker and ExchangeFeed through ccxt's own binance class, against a fake Binance on 127.0.0.1.

Times are the fake's clock (2024-01-01 onwards), never the wall clock; the only waits are the client's
300 ms timeout in the tests about timeouts.
"""
import json
import logging
import math
import urllib.error
import urllib.request

import ccxt
import numpy as np
import pytest

from engine.data.features import price_features
from engine.live.exchange import (
    CANCELLED_ON_REQUEST,
    NOT_TRADED,
    UNKNOWN_EXCHANGE,
    ExchangeBroker,
    ExchangeFeed,
    connect,
)
from engine.live.orders import Fill, OrderRequest, OrderStatus
from engine.live.venue import Bar, BrokerUnavailable, Update
from tests.fakes.exchange import (
    API_KEY,
    CANCEL_ORDER,
    KLINES,
    MY_TRADES,
    PLACE_ORDER,
    QUERY_ORDER,
    SECRET,
    FakeExchange,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MINUTE = 60_000
NOW = T0 + 30 * MINUTE + 30_000  # bars opened at 0..29 min have closed; the one opened at 30 min is forming
SYMBOLS = ("BTC/USDT", "ETH/USDT")
INSUFFICIENT = "Account has insufficient balance for requested action."


def flat(price: float, n: int = 31) -> list[tuple]:
    return [(T0 + i * MINUTE, price, price + 10, price - 10, price, 5.0) for i in range(n)]


def bar() -> Bar:
    one = np.array([40_000.0, 2_000.0])
    return Bar(index=0, time="2024-01-01T00:29:00+00:00", symbols=SYMBOLS, open=one, high=one, low=one, close=one,
               volume=np.array([5.0, 5.0]))


def buy(client_order_id: str, quantity: float, **kw) -> OrderRequest:
    return OrderRequest(client_order_id=client_order_id, symbol=kw.pop("symbol", "BTC/USDT"), side="buy",
                        quantity=quantity, **kw)


def client(fake: FakeExchange, *, api_key: str = API_KEY) -> ccxt.Exchange:
    exchange = connect("binance", api_key=api_key, secret=SECRET, base_url=fake.url, timeout_ms=300)
    exchange.rateLimit = 1  # ccxt's throttle sleeps rateLimit x cost ms between calls; the fake has no limit
    exchange.load_markets()
    fake.requests.clear()
    return exchange


@pytest.fixture
def fake():
    with FakeExchange(balances={"USDT": 50_000.0, "BTC": 1.0}, now_ms=NOW) as fake:
        fake.set_candles("BTCUSDT", flat(40_000.0))
        fake.set_candles("ETHUSDT", flat(2_000.0))
        yield fake


@pytest.fixture
def broker(fake):
    return ExchangeBroker(client(fake), SYMBOLS, quote="USDT")


# ------------------------------------------------------------------------------------------------ connect

def test_connect_points_every_api_url_at_the_base_url_and_loads_only_spot_markets(fake):
    exchange = connect("binance", api_key=API_KEY, secret=SECRET, base_url=fake.url + "/")
    exchange.rateLimit = 1
    markets = exchange.load_markets()
    assert all(url.startswith(fake.url + "/") for url in exchange.urls["api"].values())
    assert exchange.urls["api"]["private"] == fake.url + "/api/v3"
    assert sorted(markets) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert markets["BTC/USDT"]["precision"]["amount"] == 0.0001
    assert markets["ETH/USDT"]["limits"]["amount"]["min"] == 0.001
    assert markets["BTC/USDT"]["limits"]["cost"]["min"] == 5.0
    assert fake.requests == ["GET /api/v3/exchangeInfo"]  # no currencies, margin pairs, futures or options
    assert not exchange.logger.isEnabledFor(logging.DEBUG)  # ccxt logs request headers (the key) at DEBUG


def test_connect_refuses_an_exchange_ccxt_does_not_have():
    with pytest.raises(ValueError, match="no exchange 'nosuchvenue'") as err:
        connect("nosuchvenue")
    assert str(err.value) == UNKNOWN_EXCHANGE.format(exchange_id="nosuchvenue")


def test_the_broker_refuses_a_symbol_in_another_quote_currency(fake):
    with pytest.raises(ValueError, match="'BTC/EUR' is not quoted in 'USDT'"):
        ExchangeBroker(client(fake), ["BTC/EUR"], quote="USDT")


# ----------------------------------------------------------------------------------------------- placing

def test_a_market_buy_fills_at_the_last_close_and_cash_and_positions_follow(broker, fake):
    update = broker.submit(buy("b1", 0.5), bar())

    (order,) = update.orders
    assert (order.status, order.filled_quantity, order.average_price) == (OrderStatus.FILLED, 0.5, 40_000.0)
    assert (order.broker_order_id, order.fees) == ("1", 20.0)  # 0.1% of 0.5 BTC, charged in BTC, at 40 000
    assert update.fills == [Fill(fill_id="1", client_order_id="b1", symbol="BTC/USDT", side="buy", quantity=0.5,
                                 price=40_000.0, fee=0.0, fee_base=0.0005, time="2024-01-01T00:30:30+00:00")]
    assert update.fills[0].position_change == 0.4995 and update.fills[0].fee_value == 20.0
    account = broker.account()
    assert account.cash == 30_000.0
    assert account.positions == {"BTC/USDT": 1.4995, "ETH/USDT": 0.0}
    assert broker.fills() == update.fills
    assert broker.open_orders() == []
    assert fake.requests == [QUERY_ORDER, PLACE_ORDER, MY_TRADES, "GET /api/v3/account"]


def test_a_market_sell_pays_its_fee_in_the_quote_currency(broker):
    update = broker.submit(OrderRequest("s1", "BTC/USDT", "sell", 0.2), bar())

    assert update.orders[0].status == OrderStatus.FILLED
    assert [(f.side, f.quantity, f.price, f.fee) for f in update.fills] == [("sell", 0.2, 40_000.0, 8.0)]
    assert broker.account().cash == 50_000.0 + 8_000.0 - 8.0
    assert broker.account().positions["BTC/USDT"] == 0.8


def test_a_resubmitted_client_order_id_answers_with_the_same_order_and_the_venue_holds_one(broker, fake):
    first = broker.submit(buy("idem", 0.1), bar())
    again = broker.submit(buy("idem", 0.1), bar())

    assert again == Update(orders=first.orders)
    assert fake.count(PLACE_ORDER) == 1

    restarted = ExchangeBroker(client(fake), SYMBOLS, quote="USDT")  # a new process: it asks the venue first
    after_restart = restarted.submit(buy("idem", 0.1), bar())
    assert after_restart.orders[0].status == OrderStatus.FILLED
    assert after_restart.orders[0].broker_order_id == first.orders[0].broker_order_id == "1"
    assert [f.fill_id for f in after_restart.fills] == ["1"]
    assert fake.requests == [QUERY_ORDER, MY_TRADES]
    assert len(fake.orders_with("idem")) == 1


def test_a_venue_that_stays_down_is_broker_unavailable_and_a_retry_after_recovery_places_one_order(broker, fake):
    fake.timeout_next(10)
    with pytest.raises(BrokerUnavailable) as err:
        broker.submit(buy("down", 0.1), bar())
    assert str(err.value).startswith("binance did not answer (RequestTimeout)")
    assert API_KEY not in str(err.value) and SECRET not in str(err.value)
    assert fake.requests == [QUERY_ORDER]  # the look-up timed out: nothing was sent to place
    assert fake.book == []

    fake.clear_faults()
    update = broker.submit(buy("down", 0.1), bar())
    assert update.orders[0].status == OrderStatus.FILLED
    assert len(fake.orders_with("down")) == 1
    assert fake.count(PLACE_ORDER) == 1


def test_a_placement_that_times_out_is_looked_up_then_sent_once_more_with_the_same_id(broker, fake):
    fake.timeout_next(1, endpoint=PLACE_ORDER)
    update = broker.submit(buy("slow", 0.1), bar())

    assert update.orders[0].status == OrderStatus.FILLED
    assert fake.requests == [QUERY_ORDER, PLACE_ORDER, QUERY_ORDER, PLACE_ORDER, MY_TRADES]
    assert [o["clientOrderId"] for o in fake.book] == ["slow"]


def test_a_placement_that_times_out_twice_is_broker_unavailable_with_nothing_placed(broker, fake):
    fake.timeout_next(2, endpoint=PLACE_ORDER)
    with pytest.raises(BrokerUnavailable, match="whether order 'twice' arrived is unknown"):
        broker.submit(buy("twice", 0.1), bar())
    assert fake.requests == [QUERY_ORDER, PLACE_ORDER, QUERY_ORDER, PLACE_ORDER]
    assert fake.book == []
    assert broker.get_order("twice") is None


def test_a_lost_acknowledgement_places_exactly_one_order_and_the_broker_reports_it(broker, fake):
    fake.lose_ack_next()
    update = broker.submit(buy("lost", 0.25), bar())

    (order,) = update.orders
    assert (order.status, order.filled_quantity, order.broker_order_id) == (OrderStatus.FILLED, 0.25, "1")
    assert [(f.fill_id, f.quantity, f.price) for f in update.fills] == [("1", 0.25, 40_000.0)]
    assert fake.requests == [QUERY_ORDER, PLACE_ORDER, QUERY_ORDER, MY_TRADES]
    assert len(fake.orders_with("lost")) == 1


def test_an_order_placed_while_the_venue_went_silent_is_found_by_get_order_once_it_answers(broker, fake):
    fake.error_next(-2013, "Order does not exist.", endpoint=QUERY_ORDER)  # the look-up before placing
    fake.lose_ack_next()
    fake.timeout_next(5, endpoint=QUERY_ORDER)
    with pytest.raises(BrokerUnavailable):
        broker.submit(buy("silent", 0.1), bar())
    assert len(fake.orders_with("silent")) == 1

    fake.clear_faults()
    found = broker.get_order("silent")
    assert (found.status, found.filled_quantity, found.broker_order_id) == (OrderStatus.FILLED, 0.1, "1")
    assert broker.submit(buy("silent", 0.1), bar()).orders == [found]
    assert fake.count(PLACE_ORDER) == 1


def test_an_exchange_error_is_a_rejected_order_with_the_venues_message(broker, fake):
    fake.error_next(-2010, INSUFFICIENT, endpoint=PLACE_ORDER)
    (order,) = broker.submit(buy("poor", 0.1), bar()).orders

    assert (order.status, order.reason) == (OrderStatus.REJECTED, INSUFFICIENT)
    assert fake.book == []
    assert broker.submit(buy("poor", 0.1), bar()).orders == [order]  # held: not sent again
    assert fake.count(PLACE_ORDER) == 1


def test_the_venues_own_refusals_are_rejections_with_its_words(broker, fake):
    too_big = broker.submit(buy("big", 2.0), bar()).orders[0]  # 80 000 USDT of 50 000
    fake.error_next(-1121, "Invalid symbol.", endpoint=PLACE_ORDER)
    bad_symbol = broker.submit(buy("sym", 0.1), bar()).orders[0]
    too_small = broker.submit(buy("dust", 0.00001), bar()).orders[0]  # below the lot step: ccxt refuses it

    assert (too_big.status, too_big.reason) == (OrderStatus.REJECTED, INSUFFICIENT)
    assert (bad_symbol.status, bad_symbol.reason) == (OrderStatus.REJECTED, "Invalid symbol.")
    assert (too_small.status, too_small.reason) == (
        OrderStatus.REJECTED, "amount of BTC/USDT must be greater than minimum amount precision of 0.0001")
    assert fake.book == []
    assert fake.balance("USDT") == (50_000.0, 0.0)


def test_a_symbol_the_broker_does_not_trade_is_rejected_without_asking_the_venue(broker, fake):
    (order,) = broker.submit(buy("sol", 1.0, symbol="SOL/USDT"), bar()).orders
    assert order.status == OrderStatus.REJECTED
    assert order.reason == NOT_TRADED.format(symbol="SOL/USDT", symbols="BTC/USDT, ETH/USDT")
    assert fake.requests == []


# ------------------------------------------------------------------------------------------ sync, cancel

def test_a_partial_fill_is_partially_filled_then_filled_on_a_later_sync(broker, fake):
    fake.partial_fill_next(0.4)
    update = broker.submit(buy("part", 0.5, order_type="limit", limit_price=40_100.0), bar())

    (order,) = update.orders
    assert (order.status, order.filled_quantity, order.average_price) == (OrderStatus.PARTIALLY_FILLED, 0.2, 40_000.0)
    assert [(f.quantity, f.price, f.fee_value) for f in update.fills] == [(0.2, 40_000.0, 8.0)]
    assert broker.open_orders() == [order]
    assert fake.balance("USDT") == (50_000.0 - 0.5 * 40_100.0, 0.5 * 40_100.0 - 0.2 * 40_000.0)

    fake.requests.clear()
    assert broker.sync(bar()) == Update()  # nothing new: one look at the order, no trades read
    assert fake.requests == [QUERY_ORDER]

    fake.set_time(NOW + MINUTE)
    fake.add_candle("BTCUSDT", (T0 + 31 * MINUTE, 40_050.0, 40_080.0, 40_020.0, 40_060.0, 3.0))
    later = broker.sync(bar())

    (done,) = later.orders
    assert (done.status, done.filled_quantity) == (OrderStatus.FILLED, 0.5)
    assert done.average_price == pytest.approx((0.2 * 40_000.0 + 0.3 * 40_050.0) / 0.5)
    assert done.fees == pytest.approx(8.0 + 0.0003 * 40_050.0)
    assert [(f.fill_id, f.quantity, f.price) for f in later.fills] == [("2", 0.3, 40_050.0)]
    assert later.fills[0].fee_value == pytest.approx(12.015)
    assert broker.open_orders() == []
    assert broker.sync(bar()) == Update()
    assert fake.balance("USDT") == (50_000.0 - 8_000.0 - 12_015.0, 0.0)


def test_a_sync_the_venue_does_not_answer_is_broker_unavailable_and_changes_nothing(broker, fake):
    (order,) = broker.submit(buy("rest", 0.1, order_type="limit", limit_price=39_000.0), bar()).orders
    fake.add_candle("BTCUSDT", (T0 + 31 * MINUTE, 39_500.0, 39_600.0, 38_900.0, 39_100.0, 3.0))
    fake.timeout_next(5)
    with pytest.raises(BrokerUnavailable):
        broker.sync(bar())
    assert broker.open_orders() == [order]

    fake.clear_faults()
    update = broker.sync(bar())
    assert [(o.status, o.filled_quantity) for o in update.orders] == [(OrderStatus.FILLED, 0.1)]
    assert [(f.quantity, f.price) for f in update.fills] == [(0.1, 39_000.0)]


def test_cancel_ends_a_resting_order_and_frees_what_it_held(broker, fake):
    (order,) = broker.submit(buy("rest", 0.1, order_type="limit", limit_price=30_000.0), bar()).orders
    assert (order.status, order.filled_quantity) == (OrderStatus.ACCEPTED, 0.0)
    assert fake.balance("USDT") == (47_000.0, 3_000.0)
    assert [o["clientOrderId"] for o in broker.exchange.fetch_open_orders("BTC/USDT")] == ["rest"]

    (cancelled,) = broker.cancel("rest").orders
    assert (cancelled.status, cancelled.reason) == (OrderStatus.CANCELLED, CANCELLED_ON_REQUEST)
    assert fake.orders_with("rest")[0]["status"] == "CANCELED"
    assert fake.balance("USDT") == (50_000.0, 0.0)
    assert broker.open_orders() == []

    fake.requests.clear()
    assert broker.cancel("rest") == Update(orders=[cancelled])  # final: returned as it is
    assert fake.requests == []


def test_a_restarted_broker_finds_a_resting_order_by_its_id_and_can_cancel_it(broker, fake):
    broker.submit(buy("kept", 0.1, order_type="limit", limit_price=30_000.0, time_in_force="gtc"), bar())

    restarted = ExchangeBroker(client(fake), SYMBOLS, quote="USDT")
    found = restarted.get_order("kept")
    assert found.request == buy("kept", 0.1, order_type="limit", limit_price=30_000.0)
    assert (found.status, found.broker_order_id) == (OrderStatus.ACCEPTED, "1")
    assert restarted.open_orders() == [found]
    assert restarted.cancel("kept").orders[0].status == OrderStatus.CANCELLED
    assert fake.orders_with("kept")[0]["status"] == "CANCELED"


def test_cancelling_an_order_that_filled_meanwhile_reports_the_fill(broker, fake):
    broker.submit(buy("race", 0.1, order_type="limit", limit_price=39_000.0), bar())
    fake.add_candle("BTCUSDT", (T0 + 31 * MINUTE, 39_500.0, 39_600.0, 38_900.0, 39_100.0, 3.0))

    update = broker.cancel("race")
    assert [(o.status, o.filled_quantity, o.reason) for o in update.orders] == [(OrderStatus.FILLED, 0.1, "")]
    assert [(f.quantity, f.price) for f in update.fills] == [(0.1, 39_000.0)]
    assert fake.requests[-3:] == [CANCEL_ORDER, QUERY_ORDER, MY_TRADES]


def test_an_id_neither_the_broker_nor_the_venue_knows(broker, fake):
    assert broker.get_order("nobody") is None
    with pytest.raises(KeyError, match="no order 'nobody'"):
        broker.cancel("nobody")
    assert fake.requests == [QUERY_ORDER, QUERY_ORDER] * 2  # each symbol asked, twice


def test_a_fee_charged_in_a_third_currency_is_recorded_as_zero_with_a_warning(caplog):
    with FakeExchange(balances={"USDT": 50_000.0, "BNB": 100.0}, fee_asset="BNB", now_ms=NOW) as fake:
        fake.set_candles("BTCUSDT", flat(40_000.0))
        broker = ExchangeBroker(client(fake), ["BTC/USDT"], quote="USDT")
        with caplog.at_level(logging.WARNING, logger="engine.live.exchange"):
            update = broker.submit(buy("bnb", 0.5), bar())
    assert [(f.quantity, f.fee) for f in update.fills] == [(0.5, 0.0)]
    assert update.orders[0].fees == 0.0
    assert "charged its fee in BNB" in caplog.text


# ------------------------------------------------------------------------------------------ credentials

def test_a_missing_api_key_is_an_authentication_error_before_anything_is_sent(fake):
    broker = ExchangeBroker(client(fake, api_key=""), SYMBOLS, quote="USDT")
    with pytest.raises(ccxt.AuthenticationError, match='requires "apiKey" credential'):
        broker.submit(buy("nokey", 0.1), bar())
    assert fake.requests == []
    assert fake.book == []


def test_a_key_the_venue_refuses_is_an_authentication_error_from_every_call(fake):
    broker = ExchangeBroker(client(fake, api_key="wrong-key"), SYMBOLS, quote="USDT")
    with pytest.raises(ccxt.AuthenticationError) as err:
        broker.submit(buy("badkey", 0.1), bar())
    assert "Invalid API-key, IP, or permissions for action." in str(err.value)
    assert "wrong-key" not in str(err.value) and SECRET not in str(err.value)
    with pytest.raises(ccxt.AuthenticationError):
        broker.account()
    assert fake.book == []


def test_the_fake_answers_binances_auth_error_to_a_request_without_the_key_header(fake):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(fake.url + "/api/v3/account?timestamp=1&signature=x", timeout=5)
    assert err.value.code == 401
    assert json.loads(err.value.read()) == {"code": -2014, "msg": "API-key format invalid."}


# -------------------------------------------------------------------------------------------------- feed

def wavy(base: float, n: int = 40) -> list[tuple]:
    rows = []
    for i in range(n):
        close = round(base * (1 + 0.01 * math.sin(i / 3)), 2)
        open_ = round(base * (1 + 0.01 * math.sin((i - 1) / 3)), 2)
        rows.append((T0 + i * MINUTE, open_, max(open_, close) + 1.5, min(open_, close) - 1.5, close, 10.0 + i))
    return rows


@pytest.fixture
def feed_fake():
    with FakeExchange(now_ms=NOW) as fake:
        fake.set_candles("BTCUSDT", wavy(40_000.0))
        fake.set_candles("ETHUSDT", wavy(2_000.0))
        yield fake


def make_feed(fake: FakeExchange, history: int = 20) -> ExchangeFeed:
    return ExchangeFeed(client(fake), SYMBOLS, timeframe="1m", history=history, clock=lambda: fake.now_ms / 1000)


def expected(rows_from: int, rows_to: int) -> dict[str, np.ndarray]:
    btc, eth = np.array(wavy(40_000.0))[rows_from:rows_to], np.array(wavy(2_000.0))[rows_from:rows_to]
    return {k: np.stack([btc[:, j], eth[:, j]], axis=1)
            for j, k in enumerate(("open", "high", "low", "close", "volume"), start=1)}


def test_the_feed_starts_from_the_closed_history_and_never_returns_the_forming_bar(feed_fake):
    feed = make_feed(feed_fake)

    assert feed.poll() is None  # the bar opened at 00:30 is forming at 00:30:30
    assert feed.seconds_to_next() == 30.0
    market = feed.market()
    assert len(market) == 20
    assert str(market.dates[0]) == "2024-01-01T00:10:00.000000000"
    assert str(market.dates[-1]) == "2024-01-01T00:29:00.000000000"
    np.testing.assert_array_equal(market.close, expected(10, 30)["close"])
    assert (market.frequency, market.periods_per_year, market.tickers) == ("minute", 525_600.0, SYMBOLS)
    assert feed_fake.count(KLINES) == 2
    assert feed.finished is False

    assert feed.poll() is None
    assert feed_fake.count(KLINES) == 2  # not due: polling asked nothing


def test_the_feed_returns_each_closed_bar_once_in_order_and_catches_up(feed_fake):
    feed = make_feed(feed_fake)
    feed.poll()

    feed_fake.set_time(T0 + 31 * MINUTE)
    assert feed.seconds_to_next() == 0.0
    first = feed.poll()
    assert (first.index, first.time, first.symbols) == (20, "2024-01-01T00:30:00+00:00", SYMBOLS)
    np.testing.assert_array_equal(first.close, expected(30, 31)["close"][0])
    np.testing.assert_array_equal(first.volume, [40.0, 40.0])
    assert feed.poll() is None
    assert feed.seconds_to_next() == 60.0

    feed_fake.set_time(T0 + 34 * MINUTE + 10_000)  # three more closed while nobody polled
    bars = [feed.poll(), feed.poll(), feed.poll()]
    assert [b.index for b in bars] == [21, 22, 23]
    assert [b.time[11:16] for b in bars] == ["00:31", "00:32", "00:33"]
    assert feed.poll() is None
    assert feed_fake.count(KLINES) == 6  # history, then one read per due bar per symbol, one for the catch-up
    assert len(feed.market()) == 24


def test_the_feeds_features_are_the_engines_price_features_over_the_same_prices(feed_fake):
    feed = make_feed(feed_fake, history=25)
    feed_fake.set_time(T0 + 35 * MINUTE)
    while feed.poll() is not None:
        pass

    market = feed.market()
    prices = expected(5, 35)
    names, features = price_features(prices)
    assert market.feature_names == names
    np.testing.assert_array_equal(market.features, features)
    for key in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(market.prices[key], prices[key])


def test_a_feed_whose_venue_does_not_answer_returns_none_and_tries_again_later(feed_fake):
    feed = make_feed(feed_fake)
    feed.poll()
    feed_fake.set_time(T0 + 31 * MINUTE)
    feed_fake.timeout_next(1, endpoint=KLINES)

    assert feed.poll() is None
    assert feed.seconds_to_next() == 5.0
    assert feed.poll() is None
    assert feed_fake.count(KLINES) == 3  # the failed one only; the second poll waited

    feed_fake.set_time(T0 + 31 * MINUTE + 5_000)
    bar_ = feed.poll()
    assert (bar_.index, bar_.time) == (20, "2024-01-01T00:30:00+00:00")


def test_a_bar_closed_by_the_clock_but_not_yet_published_is_asked_for_again_later(feed_fake):
    feed = make_feed(feed_fake)
    feed.poll()
    feed_fake.set_time(T0 + 41 * MINUTE)  # the fake's last candle opened at 00:39; 00:40 has closed, unpublished
    bars = [feed.poll() for _ in range(10)]

    assert [b.index for b in bars] == list(range(20, 30))
    assert bars[-1].time == "2024-01-01T00:39:00+00:00"
    assert feed.poll() is None
    assert feed.seconds_to_next() == 5.0
    assert feed.poll() is None
    assert feed_fake.count(KLINES) == 6  # history, the catch-up, one look for 00:40; none while waiting
