"""A real exchange through ccxt: a polling Feed of closed bars and a Broker of spot orders.

    exchange = connect("binance", api_key=..., secret=...)         # base_url= for a testnet or a fake
    feed = ExchangeFeed(exchange, ["BTC/USDT", "ETH/USDT"], timeframe="1m")
    broker = ExchangeBroker(exchange, ["BTC/USDT", "ETH/USDT"], quote="USDT")

Symbols are ccxt's unified ones ("BASE/QUOTE"). Spot only: positions are what the account holds of
each base currency, cash what it holds of the quote currency.

What can go wrong, and what the loop sees:
- the venue does not answer (ccxt.OperationFailed: timeouts, resets, 5xx, rate limits, maintenance):
  the broker raises BrokerUnavailable; the feed's poll returns None and tries again later;
- the venue refuses an order (ccxt.ExchangeError: funds, filters, symbol): a rejected order, reason in
  the venue's words;
- the credentials are missing or refused (ccxt.AuthenticationError and its kin): raised as it is, from
  every broker call. It is no order's fault and no retry mends it, so it must stop the deployment
  rather than reject every order one by one. ccxt's message names the exchange, never the key.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from urllib.parse import urlsplit

import ccxt
import numpy as np

from engine.data.features import price_features
from engine.data.frequency import SPACING, periods_per_year
from engine.data.market import MarketData
from engine.live.orders import (
    ORDER_TRANSITIONS,
    Account,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    order_transition,
)
from engine.live.venue import Bar, BrokerUnavailable, Update

log = logging.getLogger(__name__)
# ccxt logs every request's headers, the API key among them, at DEBUG: its clients log here, never below INFO.
_CCXT_LOG = logging.getLogger(__name__ + ".ccxt")
_CCXT_LOG.setLevel(logging.INFO)

UNKNOWN_EXCHANGE = "ccxt has no exchange {exchange_id!r}"
WRONG_QUOTE = "symbol {symbol!r} is not quoted in {quote!r}"
UNREACHABLE = "{exchange} did not answer ({error}); {what}"
ORDER_UNKNOWN = "whether order {id!r} arrived is unknown: send it again with the same id, or get_order it"
UNKNOWN_ORDER = "no order {id!r} at this broker or at the venue"
NOT_TRADED = "symbol {symbol!r} is not one this broker trades ({symbols})"
NO_DAY_ORDERS = "the venue has no day orders; send gtc or ioc"
CANCELLED_ON_REQUEST = "cancelled on request"
VENUE_FINAL = "{status} by the venue"
FEE_NOT_CONVERTED = "trade %s of %s charged its fee in %s, neither base nor quote: recorded as 0"

# Only spot markets, through documented ccxt options: the other market types (and binance's margin
# and currency lists) are more requests at start, on endpoints a spot account does not need.
SPOT_OPTIONS: dict[str, dict] = {
    "binance": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                "fetchMargins": False},
}
# The exchange's own parameter names for a client order id: (when placing, when looking one up).
# Elsewhere ccxt's unified "clientOrderId" serves both.
CLIENT_ID_PARAMS: dict[str, tuple[str, str]] = {"binance": ("newClientOrderId", "origClientOrderId")}
UNIFIED_CLIENT_ID = ("clientOrderId", "clientOrderId")

# An answer whose outcome is unknown (timeouts, resets, 5xx, "try again"): the order may or may not exist.
_UNSURE = ccxt.OperationFailed


def connect(exchange_id: str, *, api_key: str = "", secret: str = "", base_url: str | None = None,
            timeout_ms: int = 10_000) -> ccxt.Exchange:
    """A synchronous ccxt client for `exchange_id`, rate-limited, with these credentials.

    base_url: every API url is rewritten to it, keeping each url's path (a testnet, or a local fake).
    """
    cls = getattr(ccxt, exchange_id, None)
    if not (isinstance(cls, type) and issubclass(cls, ccxt.Exchange)):
        raise ValueError(UNKNOWN_EXCHANGE.format(exchange_id=exchange_id))
    exchange = cls({"apiKey": api_key, "secret": secret, "enableRateLimit": True, "timeout": timeout_ms,
                    "logger": _CCXT_LOG, "options": copy.deepcopy(SPOT_OPTIONS.get(exchange_id, {}))})
    if base_url:
        exchange.urls["api"] = _rebased(exchange.urls["api"], base_url.rstrip("/"))
    return exchange


def _rebased(urls, base_url: str):
    if isinstance(urls, dict):
        return {key: _rebased(url, base_url) for key, url in urls.items()}
    if isinstance(urls, str):
        return base_url + urlsplit(urls).path
    return urls


def _venue_message(exc: Exception, exchange_id: str) -> str:
    """The venue's own words from a ccxt exception: its "msg" when ccxt quotes the JSON answer."""
    text = str(exc).removeprefix(exchange_id + " ")  # ccxt's prefix
    try:
        body = json.loads(text)
    except ValueError:
        return text
    return str(body.get("msg") or body.get("message") or text) if isinstance(body, dict) else text


def _unavailable(exchange: ccxt.Exchange, exc: Exception, what: str) -> BrokerUnavailable:
    # The class name, not ccxt's message: that one carries the signed url.
    return BrokerUnavailable(UNREACHABLE.format(exchange=exchange.id, error=type(exc).__name__, what=what))


# ------------------------------------------------------------------------------------------------ broker

_VENUE_STATUS = {"closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELLED, "expired": OrderStatus.EXPIRED,
                 "rejected": OrderStatus.REJECTED}


def _status_of(info: dict) -> str | None:
    """ccxt's order status as an OrderStatus; None for a passing one (canceling) or one ccxt does not know."""
    if info.get("status") == "open":
        return OrderStatus.PARTIALLY_FILLED if (info.get("filled") or 0) > 0 else OrderStatus.ACCEPTED
    return _VENUE_STATUS.get(info.get("status"))


def _advance(order: Order, info: dict, cancelled: str = "") -> Order:
    """`order` moved to where the venue's `info` (a ccxt order) says it stands; `cancelled`: the reason
    to give if it now is cancelled (default: the venue did it)."""
    status = _status_of(info)
    filled = float(info.get("filled") or 0.0)
    more = status == OrderStatus.PARTIALLY_FILLED and filled > order.filled_quantity
    if status is None or (status == order.status and not more):
        return order
    if status not in ORDER_TRANSITIONS[order.status]:
        # A venue reporting a step back (it lags behind itself): keep what we know, it catches up.
        log.warning("order %s: venue says %s after %s; kept", order.client_order_id, status, order.status)
        return order
    reason = order.reason
    if status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED):
        reason = (status == OrderStatus.CANCELLED and cancelled) or VENUE_FINAL.format(status=status)
    return order_transition(order, status, filled_quantity=max(filled, order.filled_quantity),
                            average_price=info.get("average") or order.average_price,
                            broker_order_id=str(info.get("id") or order.broker_order_id), reason=reason)


def _request_from(info: dict, client_order_id: str) -> OrderRequest:
    """The request behind an order this broker did not place in this life (found at the venue)."""
    limit = info.get("type") == "limit"
    tif = str(info.get("timeInForce") or "gtc").lower()
    return OrderRequest(client_order_id=client_order_id, symbol=info["symbol"], side=info["side"],
                        quantity=float(info["amount"]), order_type="limit" if limit else "market",
                        limit_price=float(info["price"]) if limit else None,
                        time_in_force=tif if tif in ("gtc", "ioc") else "gtc")


class ExchangeBroker:
    """The Broker protocol over a ccxt exchange's spot account.

    Idempotent on the client order id, which travels to the venue: before placing, the broker asks the
    venue for it, so a resubmission after a crash or a BrokerUnavailable places nothing twice. When
    placing times out or the connection drops (the answer may be lost with the order placed), it asks
    again; found, that is the order; not found, it places once more with the same id; no answer,
    BrokerUnavailable.

    Fills come from the venue's trades (fill_id = the trade id), fetched per symbol only while an
    order has filled more than its recorded fills, from the latest trade time seen. A fee charged in
    the quote currency is taken as it is; in the base currency it is converted at the trade's price
    (what it was worth then); in any other currency (binance's BNB discount) it is recorded as 0 with
    a warning in the log, since converting it would need a third price. The account's balances, not
    the fills, say what is held.
    """

    def __init__(self, exchange: ccxt.Exchange, symbols: Iterable[str], *, quote: str):
        self.exchange = exchange
        self.symbols = tuple(symbols)
        self.quote = quote
        for symbol in self.symbols:
            if symbol.split(":")[0].partition("/")[2] != quote:
                raise ValueError(WRONG_QUOTE.format(symbol=symbol, quote=quote))
        self._place_param, self._lookup_param = CLIENT_ID_PARAMS.get(exchange.id, UNIFIED_CLIENT_ID)
        self._orders: dict[str, Order] = {}
        self._by_venue_id: dict[tuple[str, str], str] = {}
        self._fills: list[Fill] = []
        self._fill_ids: set[str] = set()
        self._filled_by_fills: dict[str, float] = {}
        self._since: dict[str, int | None] = dict.fromkeys(self.symbols)  # trades from this time (ms)
        self._unsure: dict[str, OrderRequest] = {}  # sent, then no answer: where to look them up

    # ------------------------------------------------------------------------------------ protocol

    def submit(self, request: OrderRequest, bar: Bar) -> Update:
        held = self._orders.get(request.client_order_id)
        if held is not None:
            return Update(orders=[held])
        request = self._to_precision(request)
        refusal = self._refusal(request)
        if refusal:
            return Update(orders=[self._keep_rejected(request, refusal)])
        try:
            info = self._lookup(request.symbol, request.client_order_id) or self._place(request)
        except _UNSURE as exc:
            self._unsure[request.client_order_id] = request
            raise _unavailable(self.exchange, exc, ORDER_UNKNOWN.format(id=request.client_order_id)) from exc
        except ccxt.AuthenticationError:
            raise
        except ccxt.ExchangeError as exc:
            return Update(orders=[self._keep_rejected(request, _venue_message(exc, self.exchange.id))])
        order = self._keep(Order(request=request), info)
        fills, fee_changed = self._poll_fills()
        return Update(orders=[fee_changed.get(order.client_order_id, order)], fills=fills)

    def _to_precision(self, request: OrderRequest) -> OrderRequest:
        """`request` with its quantity cut down to the venue's lot step (ccxt's amount_to_precision
        truncates): a policy's target is any float, a venue takes whole lots only. What is placed is what
        the order records. A quantity below one lot is left as it is, for the venue to refuse in its words."""
        try:
            self.exchange.load_markets()
            amount = float(self.exchange.amount_to_precision(request.symbol, request.quantity))
        except _UNSURE as exc:
            raise _unavailable(self.exchange, exc, "the markets were not loaded; nothing was sent") from exc
        except (ccxt.ExchangeError, ValueError, KeyError):
            return request
        return dataclasses.replace(request, quantity=amount) if amount > 0 else request

    def cancel(self, client_order_id: str) -> Update:
        order = self.get_order(client_order_id)
        if order is None:
            raise KeyError(UNKNOWN_ORDER.format(id=client_order_id))
        if not order.is_open:
            return Update(orders=[order])
        symbol = order.request.symbol
        try:
            info = self.exchange.cancel_order(order.broker_order_id, symbol)
        except _UNSURE as exc:
            raise _unavailable(self.exchange, exc, f"whether {client_order_id!r} is cancelled is unknown") from exc
        except ccxt.AuthenticationError:
            raise
        except ccxt.ExchangeError:
            info = self._fetch(order)  # it filled or ended first: take the venue's word for where it stands
        new = _advance(order, info or {}, CANCELLED_ON_REQUEST)
        self._orders[client_order_id] = new
        fills, fee_changed = self._poll_fills()
        return Update(orders=[fee_changed.get(client_order_id, new)], fills=fills)

    def sync(self, bar: Bar) -> Update:
        # Read everything first, so a venue that stops answering half-way leaves the broker unchanged.
        infos = {o.client_order_id: self._fetch(o) for o in self.open_orders()}
        changed = {}
        for client_order_id, info in infos.items():
            old = self._orders[client_order_id]
            new = _advance(old, info) if info else old
            if new != old:
                self._orders[client_order_id] = changed[client_order_id] = new
        fills, fee_changed = self._poll_fills()
        changed.update(fee_changed)
        return Update(orders=list(changed.values()), fills=fills)

    def get_order(self, client_order_id: str) -> Order | None:
        """The order held here, else the one the venue holds under that id (kept from then on), else None."""
        held = self._orders.get(client_order_id)
        if held is not None:
            return held
        request = self._unsure.get(client_order_id)
        try:
            for symbol in (request.symbol,) if request else self.symbols:
                info = self._lookup(symbol, client_order_id)
                if info is not None:
                    return self._keep(Order(request=request or _request_from(info, client_order_id)), info)
        except _UNSURE as exc:
            raise _unavailable(self.exchange, exc, f"order {client_order_id!r} could not be looked up") from exc
        return None

    def open_orders(self) -> list[Order]:
        return [o for o in self._orders.values() if o.is_open]

    def account(self) -> Account:
        """Totals (free + locked in open orders): cash in the quote currency, positions in each base."""
        try:
            balance = self.exchange.fetch_balance()
        except _UNSURE as exc:
            raise _unavailable(self.exchange, exc, "the account could not be read") from exc
        totals = balance.get("total") or {}
        positions = {s: float(totals.get(self.exchange.market(s)["base"]) or 0.0) for s in self.symbols}
        return Account(cash=float(totals.get(self.quote) or 0.0), positions=positions)

    def fills(self) -> list[Fill]:
        return list(self._fills)

    # ------------------------------------------------------------------------------------- placing

    def _refusal(self, request: OrderRequest) -> str:
        if request.symbol not in self.symbols:
            return NOT_TRADED.format(symbol=request.symbol, symbols=", ".join(self.symbols))
        if request.order_type == "limit" and request.time_in_force == "day":
            return NO_DAY_ORDERS
        return ""

    def _lookup(self, symbol: str, client_order_id: str) -> dict | None:
        try:
            return self.exchange.fetch_order(None, symbol, {self._lookup_param: client_order_id})
        except ccxt.OrderNotFound:
            return None

    def _place(self, request: OrderRequest) -> dict:
        try:
            return self._create(request)
        except _UNSURE:
            found = self._lookup(request.symbol, request.client_order_id)
            if found is not None:
                return found  # placed; only the acknowledgement was lost
            return self._create(request)  # the one retry, under the same id

    def _create(self, request: OrderRequest) -> dict:
        params = {self._place_param: request.client_order_id}
        if request.order_type == "limit":
            params["timeInForce"] = request.time_in_force.upper()
        return self.exchange.create_order(request.symbol, request.order_type, request.side, request.quantity,
                                          request.limit_price, params)

    def _keep_rejected(self, request: OrderRequest, reason: str) -> Order:
        order = order_transition(Order(request=request), OrderStatus.REJECTED, reason=reason)
        self._orders[request.client_order_id] = order
        self._unsure.pop(request.client_order_id, None)
        return order

    def _keep(self, order: Order, info: dict) -> Order:
        """Hold `order` as the venue's `info` says it stands, and look for its trades from its start."""
        order = _advance(dataclasses.replace(order, broker_order_id=str(info.get("id") or "")), info)
        symbol = order.request.symbol
        self._orders[order.client_order_id] = order
        self._unsure.pop(order.client_order_id, None)
        self._by_venue_id[(symbol, order.broker_order_id)] = order.client_order_id
        started, since = info.get("timestamp"), self._since.get(symbol)
        if started is not None and since is not None and started < since:
            self._since[symbol] = started  # an order found at the venue, older than what was read
        return order

    def _fetch(self, order: Order) -> dict | None:
        """The venue's view of a held order; None when it no longer knows it (it keeps the last known)."""
        try:
            return self.exchange.fetch_order(order.broker_order_id, order.request.symbol)
        except _UNSURE as exc:
            raise _unavailable(self.exchange, exc, "orders could not be brought up to date") from exc
        except ccxt.OrderNotFound:
            log.warning("order %s is no longer known to the venue", order.client_order_id)
            return None

    # --------------------------------------------------------------------------------------- fills

    def _poll_fills(self) -> tuple[list[Fill], dict[str, Order]]:
        """New fills of held orders, and the orders whose fees they changed. A venue that does not
        answer leaves them for the next call (nothing is lost: the trades stay there)."""
        fills = []
        for symbol in self.symbols:
            if not self._fills_pending(symbol):
                continue
            try:
                trades = self.exchange.fetch_my_trades(symbol, since=self._since[symbol])
            except _UNSURE as exc:
                log.warning("trades of %s not read (%s); next time", symbol, type(exc).__name__)
                continue
            fills += self._record(symbol, trades)
        return fills, self._refresh_fees({f.client_order_id for f in fills})

    def _fills_pending(self, symbol: str) -> bool:
        return any(o.request.symbol == symbol and o.filled_quantity
                   > self._filled_by_fills.get(o.client_order_id, 0.0) + 1e-9 * o.request.quantity
                   for o in self._orders.values())

    def _record(self, symbol: str, trades: list[dict]) -> list[Fill]:
        fills = []
        for trade in sorted(trades, key=lambda t: (t["timestamp"], str(t["id"]))):
            self._since[symbol] = max(self._since[symbol] or 0, trade["timestamp"])
            client_order_id = self._by_venue_id.get((symbol, str(trade.get("order"))))
            if client_order_id is None or str(trade["id"]) in self._fill_ids:
                continue  # another client's trade on this account, or one already recorded
            fee, fee_base = self._fee(trade, symbol)
            fill = Fill(fill_id=str(trade["id"]), client_order_id=client_order_id, symbol=symbol, side=trade["side"],
                        quantity=float(trade["amount"]), price=float(trade["price"]), fee=fee, fee_base=fee_base,
                        time=_iso(trade["timestamp"]))
            self._fills.append(fill)
            self._fill_ids.add(fill.fill_id)
            self._filled_by_fills[client_order_id] = self._filled_by_fills.get(client_order_id, 0.0) + fill.quantity
            fills.append(fill)
        return fills

    def _fee(self, trade: dict, symbol: str) -> tuple[float, float]:
        """(fee in the quote currency, fee in the base asset's units): what the trade took from cash and
        from the position, so the record's cash and positions stay the venue's balances."""
        fee = trade.get("fee") or {}
        cost, currency = float(fee.get("cost") or 0.0), fee.get("currency")
        if not cost or currency == self.quote:
            return cost, 0.0
        if currency == self.exchange.market(symbol)["base"]:
            return 0.0, cost
        log.warning(FEE_NOT_CONVERTED, trade["id"], symbol, currency)
        return 0.0, 0.0

    def _refresh_fees(self, client_order_ids: set[str]) -> dict[str, Order]:
        """Orders whose fees (the sum of their fills' fees) changed, updated; the status is untouched."""
        changed = {}
        for client_order_id in client_order_ids:
            fees = math.fsum(f.fee_value for f in self._fills if f.client_order_id == client_order_id)
            order = self._orders[client_order_id]
            if fees != order.fees:
                self._orders[client_order_id] = changed[client_order_id] = dataclasses.replace(order, fees=fees)
        return changed


# -------------------------------------------------------------------------------------------------- feed

# ccxt timeframes that are engine frequencies; any other is "irregular" with its own bars per year.
FREQUENCIES = {"1m": "minute", "5m": "5min", "15m": "15min", "30m": "30min", "1h": "hourly", "4h": "4hourly",
               "1d": "daily", "1w": "weekly", "1M": "monthly"}
BATCH = 500  # candles per request: binance's default page, under every exchange's cap we use
RETRY_S = 5.0


class ExchangeFeed:
    """The Feed protocol over an exchange's candles, polled.

    A bar is delivered once it has closed (open time + timeframe <= clock), never while it forms, each
    exactly once and in order. Bars that closed before the feed was made are history: the last
    `history` of them open market(), and poll delivers only the bars closing after that. A bar's time
    is its open time (the exchanges' and ccxt's convention). poll asks the exchange only when the next
    bar is due (seconds_to_next says when), and catches up bar by bar after an outage. A timestamp
    missing for some symbol is skipped (bars must be rectangular). A venue that does not answer makes
    poll return None and try again `retry_s` later; the first successful poll loads the history too.

    clock: seconds since the epoch; the exchange's clock when it is known to differ from this host's.
    adjusted_close: also give an "adjcp" price equal to the close (an exchange's prices need no
        adjustment for splits or dividends), so the features match a dataset that has adjusted closes.
    """

    def __init__(self, exchange: ccxt.Exchange, symbols: Iterable[str], *, timeframe: str = "1m",
                 history: int = 200, clock: Callable[[], float] = time.time, retry_s: float = RETRY_S,
                 adjusted_close: bool = False):
        self.exchange = exchange
        self.adjusted_close = adjusted_close
        self.symbols = tuple(symbols)
        self.timeframe = timeframe
        self._step = int(exchange.parse_timeframe(timeframe) * 1000)
        self._history = history
        self._clock = clock
        self._retry_ms = int(retry_s * 1000)
        start = self._now()
        self._start = start
        self._next_open = start // self._step * self._step  # the first bar to deliver opens here
        self._times: list[int] = []  # open times (ms) of the bars held: history, delivered, buffered
        self._values: list[np.ndarray] = []  # (N, 5): open, high, low, close, volume per symbol
        self._loaded = False
        self._delivered = 0  # bars of _times that market() shows (history included)
        self._retry_at = 0
        self._market: MarketData | None = None

    @property
    def finished(self) -> bool:
        return False  # a live market never ends

    def poll(self) -> Bar | None:
        if self._delivered == len(self._times) and not self._read_due():
            return None
        return self._deliver()

    def seconds_to_next(self) -> float:
        if self._delivered < len(self._times):
            return 0.0
        return max(0.0, (self._due() - self._now()) / 1000)

    def market(self) -> MarketData:
        """History and the bars delivered so far, with the engine's price features. Before the first
        successful poll this reads the history from the exchange (and ccxt errors reach the caller)."""
        if not self._loaded:
            self._read(self._now())
        if self._market is None:
            self._market = self._build(self._delivered)
        return self._market

    def close(self) -> None:
        """Nothing to release: the ccxt client is the caller's, perhaps shared with a broker."""

    # ------------------------------------------------------------------------------------------ reading

    def _now(self) -> int:
        return int(round(self._clock() * 1000))

    def _due(self) -> int:
        """When poll should next ask the exchange (ms): once the next bar has closed, or a retry is due."""
        if not self._loaded:
            return self._retry_at
        return max(self._next_open + self._step, self._retry_at)

    def _read_due(self) -> bool:
        """Read the exchange if a bar is due; True when a new bar is held."""
        now = self._now()
        if now < self._due():
            return False
        try:
            self._read(now)
        except _UNSURE as exc:
            log.warning("%s candles not read (%s); again in %.0f s", self.exchange.id, type(exc).__name__,
                        self._retry_ms / 1000)
            self._retry_at = now + self._retry_ms
            return False
        if self._delivered < len(self._times):
            return True
        if now >= self._next_open + self._step:
            self._retry_at = now + self._retry_ms  # closed by the clock, not yet published by the venue
        return False

    def _read(self, now: int) -> None:
        """Fetch every bar closed by `now` from the next one on (the history first, once), aligned."""
        since = self._next_open - self._history * self._step if not self._loaded else self._next_open
        by_symbol = [{int(c[0]): c[1:6] for c in self._closed(symbol, since, now)} for symbol in self.symbols]
        times = sorted(set.intersection(*(set(rows) for rows in by_symbol)))
        for t in times:
            self._times.append(t)
            self._values.append(np.array([rows[t] for rows in by_symbol], dtype=np.float64))
        if not self._loaded:
            self._delivered = sum(1 for t in self._times if t < self._next_open)
            self._loaded = True
        if times:
            self._next_open = max(self._next_open, times[-1] + self._step)

    def _closed(self, symbol: str, since: int, now: int) -> list[list]:
        """Candles of `symbol` opened at or after `since` and closed by `now`, through as many pages as it takes."""
        out: list[list] = []
        while True:
            page = self.exchange.fetch_ohlcv(symbol, self.timeframe, since=since, limit=BATCH)
            closed = [c for c in page if c[0] >= since and c[0] + self._step <= now]
            out += closed
            if len(page) < BATCH or not closed:
                return out
            since = int(closed[-1][0]) + self._step

    def _deliver(self) -> Bar:
        i = self._delivered
        self._delivered += 1
        self._market = None
        v = self._values[i]
        return Bar(index=i, time=_iso(self._times[i]), symbols=self.symbols, open=v[:, 0].copy(),
                   high=v[:, 1].copy(), low=v[:, 2].copy(), close=v[:, 3].copy(), volume=v[:, 4].copy())

    def _build(self, n: int) -> MarketData:
        values = np.array(self._values[:n], dtype=np.float64).reshape(n, len(self.symbols), 5)
        prices = {k: values[:, :, j].copy() for j, k in enumerate(("open", "high", "low", "close", "volume"))}
        if self.adjusted_close:
            prices["adjcp"] = prices["close"].copy()
        names, features = price_features(prices)
        frequency = FREQUENCIES.get(self.timeframe, "irregular")
        per_year = (periods_per_year(frequency, "crypto") if frequency in SPACING
                    else 365 * 86_400_000 / self._step)
        return MarketData(
            dates=np.array(self._times[:n], dtype="datetime64[ms]").astype("datetime64[ns]"),
            tickers=self.symbols, prices=prices, features=features, feature_names=names, frequency=frequency,
            periods_per_year=per_year, name=f"{self.exchange.id} {self.timeframe}",
            meta={"asset_class": "crypto", "exchange": self.exchange.id, "timeframe": self.timeframe,
                  "feature_source": "computed"},
        )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()
