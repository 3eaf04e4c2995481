"""A fake Binance spot REST API on 127.0.0.1, so ccxt's own `binance` class runs unchanged in tests.

It speaks the few endpoints engine/live/exchange.py reaches, in Binance's shapes (numbers as strings,
errors as {"code": -2010, "msg": ...} with HTTP 400, auth errors with 401):

    GET /api/v3/time, /api/v3/exchangeInfo, /api/v3/klines                       (public)
    POST|GET|DELETE /api/v3/order, GET /api/v3/openOrders, /api/v3/myTrades, /api/v3/account  (signed)

Signed endpoints need the X-MBX-APIKEY header of a known key and a `signature` parameter, which is
not checked: the point is ccxt's request, not HMAC. Time is the fake's `now_ms`, never the wall
clock: klines show candles opened at or before it (the forming one included, as Binance does).
A market order fills at the close of the latest visible candle; a resting limit order fills when a
candle added later trades through its price. Commission is charged in the asset received (base on
a buy, quote on a sell), as Binance does without BNB, or in `fee_asset` when one is given.

Faults apply to the next matching request(s): timeout_next, error_next, partial_fill_next,
lose_ack_next. Endpoints are named "METHOD /path", e.g. PLACE_ORDER.
"""
from __future__ import annotations

import json
import math
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

API_KEY = "fake-api-key"
SECRET = "fake-secret"

TIME = "GET /api/v3/time"
EXCHANGE_INFO = "GET /api/v3/exchangeInfo"
KLINES = "GET /api/v3/klines"
PLACE_ORDER = "POST /api/v3/order"
QUERY_ORDER = "GET /api/v3/order"
CANCEL_ORDER = "DELETE /api/v3/order"
OPEN_ORDERS = "GET /api/v3/openOrders"
MY_TRADES = "GET /api/v3/myTrades"
ACCOUNT = "GET /api/v3/account"

# Binance's own codes and words, which ccxt maps onto its exceptions.
MISSING_KEY = (401, -2014, "API-key format invalid.")
BAD_KEY = (401, -2015, "Invalid API-key, IP, or permissions for action.")
NO_SIGNATURE = (400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
INSUFFICIENT = (400, -2010, "Account has insufficient balance for requested action.")
DUPLICATE = (400, -2010, "Duplicate order sent.")
NO_ORDER = (400, -2013, "Order does not exist.")
UNKNOWN_ORDER = (400, -2011, "Unknown order sent.")
BAD_SYMBOL = (400, -1121, "Invalid symbol.")
LOT_SIZE = (400, -1013, "Filter failure: LOT_SIZE")
PRICE_FILTER = (400, -1013, "Filter failure: PRICE_FILTER")
NOTIONAL = (400, -1013, "Filter failure: NOTIONAL")
MARKET_CLOSED = (400, -1013, "Market is closed.")
NOT_FAKED = (404, -1, "this endpoint is not faked: {endpoint}")

INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000}
ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]
OPEN = ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True)
class MarketSpec:
    """One spot market: its assets and its filters (lot step, minimum quantity, tick, minimum notional)."""

    base: str
    quote: str
    step: float
    min_qty: float
    tick: float = 0.01
    min_notional: float = 5.0


DEFAULT_MARKETS = {
    "BTCUSDT": MarketSpec("BTC", "USDT", step=0.0001, min_qty=0.0001),
    "ETHUSDT": MarketSpec("ETH", "USDT", step=0.001, min_qty=0.001),
    "SOLUSDT": MarketSpec("SOL", "USDT", step=0.01, min_qty=0.01),
}


class VenueError(Exception):
    def __init__(self, error: tuple[int, int, str], **values):
        status, code, msg = error
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg.format(**values)


@dataclass
class _Fault:
    kind: str  # timeout, error, partial, lose_ack
    endpoint: str | None  # None: any request
    remaining: int
    seconds: float = 0.0
    error: tuple[int, int, str] | None = None
    fraction: float = 1.0


def _num(x: float) -> str:
    return f"{x:.8f}"


def _on_grid(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) < 1e-6


class FakeExchange:
    """The fake venue: an HTTP server in a thread over an in-memory book. Use as a context manager."""

    def __init__(self, *, markets: dict[str, MarketSpec] | None = None, balances: dict[str, float] | None = None,
                 fee_rate: float = 0.001, fee_asset: str | None = None, now_ms: int = 1_704_067_200_000,
                 api_keys: tuple[str, ...] = (API_KEY,)):
        self.markets = dict(markets or DEFAULT_MARKETS)
        self.fee_rate, self.fee_asset, self.now_ms = fee_rate, fee_asset, now_ms
        self.api_keys = set(api_keys)
        self.balances: dict[str, list[float]] = {a: [float(v), 0.0] for a, v in (balances or {}).items()}
        self.candles: dict[str, list[list[float]]] = {}
        self.intervals: dict[str, str] = {}
        self.book: list[dict] = []  # every order ever placed, in placement order
        self.trades: list[dict] = []
        self.requests: list[str] = []  # "METHOD /path" of every request, in arrival order
        self._faults: list[_Fault] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeExchange":
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-exchange", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases requests hanging in a timeout fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def __enter__(self) -> "FakeExchange":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------ test controls

    def set_candles(self, symbol: str, rows, interval: str = "1m") -> None:
        """Replace `symbol`'s candles with rows of (open_ms, open, high, low, close, volume)."""
        with self._lock:
            self.candles[symbol] = sorted([list(map(float, r)) for r in rows], key=lambda r: r[0])
            self.intervals[symbol] = interval

    def add_candle(self, symbol: str, row) -> None:
        """Append one candle, then fill the symbol's resting orders that it trades through."""
        with self._lock:
            self.candles.setdefault(symbol, []).append(list(map(float, row)))
            self.intervals.setdefault(symbol, "1m")
            for order in [o for o in self.book if o["symbol"] == symbol and o["status"] in OPEN]:
                self._match_candle(order, self.candles[symbol][-1])

    def set_time(self, now_ms: int) -> None:
        with self._lock:
            self.now_ms = int(now_ms)

    def balance(self, asset: str) -> tuple[float, float]:
        """(free, locked) of `asset`."""
        with self._lock:
            free, locked = self.balances.get(asset, [0.0, 0.0])
            return round(free, 8), round(locked, 8)

    def orders_with(self, client_order_id: str) -> list[dict]:
        with self._lock:
            return [dict(o) for o in self.book if o["clientOrderId"] == client_order_id]

    def count(self, endpoint: str) -> int:
        with self._lock:
            return self.requests.count(endpoint)

    def timeout_next(self, n: int = 1, *, endpoint: str | None = None, seconds: float = 2.0) -> None:
        """The next n requests (to `endpoint`, default any) hang `seconds` unprocessed, then the
        connection closes unanswered. Set the client's timeout below `seconds`."""
        self._add(_Fault("timeout", endpoint, n, seconds=seconds))

    def error_next(self, code: int, msg: str, *, n: int = 1, endpoint: str | None = None, status: int = 400) -> None:
        """The next n requests (to `endpoint`, default any) are answered {"code": code, "msg": msg}, unprocessed."""
        self._add(_Fault("error", endpoint, n, error=(status, code, msg)))

    def partial_fill_next(self, fraction: float) -> None:
        """The next order placed fills only `fraction` of its quantity at once; the rest rests open."""
        self._add(_Fault("partial", PLACE_ORDER, 1, fraction=fraction))

    def lose_ack_next(self) -> None:
        """The next order placed is placed, then the connection drops before the answer is sent."""
        self._add(_Fault("lose_ack", PLACE_ORDER, 1))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, endpoint: str) -> _Fault | None:
        for fault in self._faults:
            if fault.endpoint in (None, endpoint):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ----------------------------------------------------------------------------------------- serving

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        endpoint = f"{handler.command} {parts.path}"
        params = dict(parse_qsl(parts.query))
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            params.update(parse_qsl(handler.rfile.read(length).decode()))
        with self._lock:
            self.requests.append(endpoint)
            fault = self._take_fault(endpoint)
        if fault is not None and fault.kind == "timeout":
            self._stopping.wait(fault.seconds)
            return _drop(handler)
        if fault is not None and fault.kind == "error":
            return _reply(handler, fault.error[0], {"code": fault.error[1], "msg": fault.error[2]})
        try:
            with self._lock:
                status, body = 200, self._route(endpoint, params, handler.headers, fault)
        except VenueError as err:
            status, body = err.status, {"code": err.code, "msg": err.msg}
        if fault is not None and fault.kind == "lose_ack":
            return _drop(handler)
        _reply(handler, status, body)

    def _route(self, endpoint: str, params: dict, headers, fault: _Fault | None):
        public = {TIME: self._time, EXCHANGE_INFO: self._exchange_info, KLINES: self._klines}
        private = {PLACE_ORDER: self._place, QUERY_ORDER: self._query, CANCEL_ORDER: self._cancel,
                   OPEN_ORDERS: self._open_orders, MY_TRADES: self._my_trades, ACCOUNT: self._account}
        if endpoint in public:
            return public[endpoint](params)
        if endpoint not in private:
            raise VenueError(NOT_FAKED, endpoint=endpoint)
        key = headers.get("X-MBX-APIKEY")
        if not key:
            raise VenueError(MISSING_KEY)
        if key not in self.api_keys:
            raise VenueError(BAD_KEY)
        if "signature" not in params or "timestamp" not in params:
            raise VenueError(NO_SIGNATURE)
        if endpoint == PLACE_ORDER:
            return self._place(params, fault.fraction if fault is not None and fault.kind == "partial" else 1.0)
        return private[endpoint](params)

    # ------------------------------------------------------------------------------------- public data

    def _time(self, params) -> dict:
        return {"serverTime": self.now_ms}

    def _exchange_info(self, params) -> dict:
        return {"timezone": "UTC", "serverTime": self.now_ms, "rateLimits": [], "exchangeFilters": [],
                "symbols": [_symbol_info(s, m) for s, m in self.markets.items()]}

    def _klines(self, params) -> list:
        symbol = self._spec(params)[0]
        interval = params.get("interval")
        if interval != self.intervals.get(symbol, interval):
            return []
        step = INTERVAL_MS.get(interval, 60_000)
        start, end = int(params.get("startTime", 0)), int(params.get("endTime", self.now_ms))
        rows = [r for r in self.candles.get(symbol, []) if start <= r[0] <= min(end, self.now_ms)]
        limit = min(int(params.get("limit", 500)), 1000)
        rows = rows[:limit] if "startTime" in params else rows[-limit:]
        return [[int(r[0]), *map(_num, r[1:6]), int(r[0]) + step - 1, _num(r[4] * r[5]), 1, "0", "0", "0"]
                for r in rows]

    def _last_close(self, symbol: str) -> float:
        visible = [r for r in self.candles.get(symbol, []) if r[0] <= self.now_ms]
        if not visible:
            raise VenueError(MARKET_CLOSED)
        return visible[-1][4]

    def _spec(self, params) -> tuple[str, MarketSpec]:
        symbol = params.get("symbol")
        if symbol not in self.markets:
            raise VenueError(BAD_SYMBOL)
        return symbol, self.markets[symbol]

    # ------------------------------------------------------------------------------------------ orders

    def _place(self, params: dict, fraction: float = 1.0) -> dict:
        symbol, spec = self._spec(params)
        order = self._new_order(symbol, spec, params)
        price = self._last_close(symbol)
        self._reserve(order, spec, price)
        self.book.append(order)
        fills = self._match_entry(order, spec, price, fraction)
        return {**_public(order), "transactTime": self.now_ms, "fills": fills}

    def _new_order(self, symbol: str, spec: MarketSpec, params: dict) -> dict:
        qty, kind = float(params.get("quantity", 0)), params.get("type")
        limit = float(params["price"]) if kind == "LIMIT" else 0.0
        if qty < spec.min_qty or not _on_grid(qty, spec.step):
            raise VenueError(LOT_SIZE)
        if kind == "LIMIT" and not _on_grid(limit, spec.tick):
            raise VenueError(PRICE_FILTER)
        if qty * (limit or self._last_close(symbol)) < spec.min_notional:
            raise VenueError(NOTIONAL)
        cid = params.get("newClientOrderId") or f"fake-{len(self.book) + 1}"
        if any(o["symbol"] == symbol and o["clientOrderId"] == cid for o in self.book):
            raise VenueError(DUPLICATE)
        return {"symbol": symbol, "orderId": len(self.book) + 1, "orderListId": -1, "clientOrderId": cid,
                "price": _num(limit), "origQty": _num(qty), "executedQty": _num(0), "cummulativeQuoteQty": _num(0),
                "status": "NEW", "timeInForce": params.get("timeInForce", "GTC"), "type": kind,
                "side": params.get("side"), "stopPrice": _num(0), "icebergQty": _num(0), "time": self.now_ms,
                "updateTime": self.now_ms, "isWorking": True, "workingTime": self.now_ms,
                "origQuoteOrderQty": _num(0), "selfTradePreventionMode": "EXPIRE_MAKER", "_locked": 0.0}

    def _reserve(self, order: dict, spec: MarketSpec, price: float) -> None:
        """Lock what the order may spend (quote on a buy, at its limit or the last close; base on a sell)."""
        qty = float(order["origQty"])
        asset, amount = (spec.quote, qty * (float(order["price"]) or price)) if order["side"] == "BUY" \
            else (spec.base, qty)
        free, locked = self.balances.setdefault(asset, [0.0, 0.0])
        if amount > free + 1e-9:
            raise VenueError(INSUFFICIENT)
        self.balances[asset] = [free - amount, locked + amount]
        order["_locked"] = amount

    def _match_entry(self, order: dict, spec: MarketSpec, price: float, fraction: float) -> list[dict]:
        limit, buy = float(order["price"]), order["side"] == "BUY"
        marketable = order["type"] == "MARKET" or (limit >= price if buy else limit <= price)
        fills = []
        if marketable:
            qty = math.floor(float(order["origQty"]) * fraction / spec.step + 1e-9) * spec.step
            fills.append(self._fill(order, spec, round(qty, 8), price, maker=False))
        if order["timeInForce"] == "IOC" and order["status"] in OPEN:
            self._finish(order, "EXPIRED")
        return [f for f in fills if f is not None]

    def _match_candle(self, order: dict, candle: list[float]) -> None:
        _, open_, high, low, close, _ = candle
        limit, buy = float(order["price"]), order["side"] == "BUY"
        remaining = round(float(order["origQty"]) - float(order["executedQty"]), 8)
        spec = self.markets[order["symbol"]]
        if order["type"] == "MARKET":
            self._fill(order, spec, remaining, close, maker=False)
        elif buy and low <= limit:
            self._fill(order, spec, remaining, min(limit, open_), maker=True)
        elif not buy and high >= limit:
            self._fill(order, spec, remaining, max(limit, open_), maker=True)

    def _fill(self, order: dict, spec: MarketSpec, qty: float, price: float, *, maker: bool) -> dict | None:
        if qty <= 0:
            return None
        buy, cost = order["side"] == "BUY", qty * price
        spent_asset, spent = (spec.quote, cost) if buy else (spec.base, qty)
        got_asset, got = (spec.base, qty) if buy else (spec.quote, cost)
        fee_asset = self.fee_asset or got_asset
        fee = round((got if fee_asset == got_asset else cost) * self.fee_rate, 8)
        from_locked = min(spent, order["_locked"])
        order["_locked"] -= from_locked
        self._move(spent_asset, -(spent - from_locked), -from_locked)
        self._move(got_asset, got, 0.0)
        self._move(fee_asset, -fee, 0.0)
        executed = round(float(order["executedQty"]) + qty, 8)
        order.update(executedQty=_num(executed), updateTime=self.now_ms,
                     cummulativeQuoteQty=_num(float(order["cummulativeQuoteQty"]) + cost))
        trade = {"symbol": order["symbol"], "id": len(self.trades) + 1, "orderId": order["orderId"], "orderListId": -1,
                 "price": _num(price), "qty": _num(qty), "quoteQty": _num(cost), "commission": _num(fee),
                 "commissionAsset": fee_asset, "time": self.now_ms, "isBuyer": buy, "isMaker": maker,
                 "isBestMatch": True}
        self.trades.append(trade)
        self._finish(order, "FILLED" if executed >= float(order["origQty"]) - 1e-12 else "PARTIALLY_FILLED")
        return {"price": trade["price"], "qty": trade["qty"], "commission": trade["commission"],
                "commissionAsset": fee_asset, "tradeId": trade["id"]}

    def _finish(self, order: dict, status: str) -> None:
        """Set the order's status; a final one gives back what it still holds locked."""
        order.update(status=status, updateTime=self.now_ms)
        if status in OPEN or not order["_locked"]:
            return
        spec = self.markets[order["symbol"]]
        self._move(spec.quote if order["side"] == "BUY" else spec.base, order["_locked"], -order["_locked"])
        order["_locked"] = 0.0

    def _move(self, asset: str, free: float, locked: float) -> None:
        balance = self.balances.setdefault(asset, [0.0, 0.0])
        balance[0] += free
        balance[1] += locked

    def _find(self, params: dict, missing: tuple[int, int, str]) -> dict:
        symbol, _ = self._spec(params)
        for order in self.book:
            if order["symbol"] == symbol and (str(order["orderId"]) == params.get("orderId")
                                              or order["clientOrderId"] == params.get("origClientOrderId")):
                return order
        raise VenueError(missing)

    def _query(self, params: dict) -> dict:
        return _public(self._find(params, NO_ORDER))

    def _cancel(self, params: dict) -> dict:
        order = self._find(params, UNKNOWN_ORDER)
        if order["status"] not in OPEN:
            raise VenueError(UNKNOWN_ORDER)
        self._finish(order, "CANCELED")
        answer = _public(order)
        return {**answer, "origClientOrderId": order["clientOrderId"], "clientOrderId": f"cancel-{order['orderId']}",
                "transactTime": self.now_ms}

    def _open_orders(self, params: dict) -> list[dict]:
        symbol = params.get("symbol")
        return [_public(o) for o in self.book if o["status"] in OPEN and symbol in (None, o["symbol"])]

    def _my_trades(self, params: dict) -> list[dict]:
        symbol, _ = self._spec(params)
        start, end = int(params.get("startTime", 0)), int(params.get("endTime", 2**62))
        from_id = int(params.get("fromId", 0))
        rows = [t for t in self.trades if t["symbol"] == symbol and start <= t["time"] <= end and t["id"] >= from_id
                and str(t["orderId"]) == params.get("orderId", str(t["orderId"]))]
        limit = min(int(params.get("limit", 500)), 1000)
        return rows[:limit] if ("startTime" in params or "fromId" in params) else rows[-limit:]

    def _account(self, params: dict) -> dict:
        balances = [{"asset": a, "free": _num(f), "locked": _num(lk)} for a, (f, lk) in sorted(self.balances.items())]
        return {"makerCommission": 10, "takerCommission": 10, "canTrade": True, "canWithdraw": True,
                "canDeposit": True, "updateTime": self.now_ms, "accountType": "SPOT", "balances": balances,
                "permissions": ["SPOT"]}


def _public(order: dict) -> dict:
    return {k: v for k, v in order.items() if not k.startswith("_")}


def _symbol_info(symbol: str, m: MarketSpec) -> dict:
    return {
        "symbol": symbol, "status": "TRADING", "baseAsset": m.base, "baseAssetPrecision": 8, "quoteAsset": m.quote,
        "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ORDER_TYPES, "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False, "permissions": [], "permissionSets": [["SPOT"]],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": _num(m.tick), "maxPrice": "1000000.00000000",
             "tickSize": _num(m.tick)},
            {"filterType": "LOT_SIZE", "minQty": _num(m.min_qty), "maxQty": "9000.00000000", "stepSize": _num(m.step)},
            {"filterType": "NOTIONAL", "minNotional": _num(m.min_notional), "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
    }


def _reply(handler: BaseHTTPRequestHandler, status: int, body) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json;charset=UTF-8")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _drop(handler: BaseHTTPRequestHandler) -> None:
    """Close the connection without an answer: the client sees it reset, as when an acknowledgement is lost."""
    handler.close_connection = True
    try:
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the client has already gone (it timed out first)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.fake.serve(self)

    do_POST = do_DELETE = do_PUT = do_GET

    def log_message(self, format, *args):
        pass  # the tests assert on fake.requests instead
