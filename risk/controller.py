"""The risk controller's checks: plain functions over plain data (no ORM inside), so they are fast and
can be proven by property tests.

    decision = validate_trading_request(request, limits=limits, account=state, market=bar)
    targets = apply_risk_limits(targets, limits=limits, account=state, market=bar)
    level = breach(limits, state)  # the kill level a loss limit trips now, for the caller to latch

Every order of every deployment passes validate_trading_request before a broker sees it
(engine.live.trader.trade_bar is the only path, and the trading app passes this function as its check).
`account` is a RiskState the caller assembles (equity marks, the latched kill level, order history), or a
plain engine Account, which knows none of that: no kill switch, no orders sent, equity marks = equity now.

The checks run in this order; the first that fails names the refusal (Decision.code):
 1. kill_switch_pause, kill_switch_halt_not_reducing, kill_switch_flatten_not_reducing
 2. symbol_not_allowed (orders that reduce a position pass: a holding can always be closed)
 3. outside_trading_hours   (state.now, else the bar's time)
 4. no_price                (a limit needs a price the bar does not have)
 5. price_band  6. max_order_notional
 7. max_position_units  8. max_position_fraction  9. max_gross_exposure  (orders that reduce pass)
10. daily_loss  11. max_drawdown  (once breached, only orders that reduce pass)
12. max_orders_per_minute  13. max_open_orders
Values: {"limit": the limit, "value": what the account would have if the order went through}; a
number above its limit (by more than float noise, TOLERANCE) breaks it. A position grows, and is not
"reducing", unless the order shrinks it without crossing zero: flat stays flat, nothing flips.
An order is valued at its expected price (the limit price, else the bar's close) and fills without
changing equity (fees are the broker's business); positions are marked at the bar's closes.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

from engine.live.orders import Account, OrderRequest
from engine.live.venue import Bar
from risk.limits import NO_LIMITS, Limits, TradingHours

__all__ = ["NO_LIMITS", "APPROVED", "Decision", "KillLevel", "Limits", "RiskState", "apply_risk_limits", "breach",
           "is_reducing", "validate_trading_request"]

# Relative slack for float noise, as the paper broker's: a target clipped exactly to a limit must pass it.
TOLERANCE = 1e-9
ORDER_WINDOW_S = 60.0

KILL_SWITCH_PAUSE = "trading is paused: no order passes until the kill switch is lifted"
KILL_SWITCH_NOT_REDUCING = ("the kill switch is at {level}: only orders that reduce a position pass "
                            "({symbol} {before:g} -> {after:g})")
SYMBOL_NOT_ALLOWED = "{symbol} is not among the allowed symbols"
OUTSIDE_TRADING_HOURS = "{time} is outside the trading hours {hours}"
NO_PRICE = "no price for {symbol} at bar {index}: the limits cannot value the order"
PRICE_BAND = "the expected price {price:g} is {value:.4g}% from the last trade {last:g} (band {limit:g}%)"
OVER_LIMIT = "{what} would be {value:,.6g}, above the limit of {limit:,.6g}"
LOSS_BREACHED = "{what} of {value:,.6g} {unit} is beyond the limit of {limit:,.6g}: only orders that reduce pass"
TOO_MANY = "{what} would be {value}, above the limit of {limit}"


class KillLevel(enum.IntEnum):
    """The latched kill switch, least severe first. PAUSE: no order passes. HALT: only reducing orders
    pass (the caller cancels open orders). FLATTEN: HALT, and the caller closes every position."""

    NONE = 0
    PAUSE = 1
    HALT = 2
    FLATTEN = 3

    @classmethod
    def of(cls, name: str) -> KillLevel:
        return cls[name.upper()]

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class RiskState:
    """What the checks know about an account, assembled by the caller as plain data.

    equity: now, with positions marked at the bar's closes. day_start_equity / peak_equity: the marks the
    daily-loss and drawdown limits measure from. recent_order_times: epoch seconds of the orders sent in
    the last minute (older ones are ignored). now: epoch seconds; None: the bar's time.
    """

    cash: float
    positions: dict[str, float]
    equity: float
    day_start_equity: float
    peak_equity: float
    kill_level: KillLevel = KillLevel.NONE
    open_orders: int = 0
    recent_order_times: tuple[float, ...] = field(default=())
    now: float | None = None

    @classmethod
    def from_account(cls, account: Account, prices: dict[str, float], **known) -> RiskState:
        """An engine Account at `prices`, with what else is `known` (any other field by name); the rest
        defaults to nothing known: equity marks = equity now, no kill switch, no orders. A held position
        without a price makes equity NaN (unknown), which the limits that need it read as breached."""
        equity = account.cash + sum(q * prices.get(s, math.nan) for s, q in account.positions.items() if q)
        defaults = {"day_start_equity": equity, "peak_equity": equity}
        return cls(cash=account.cash, positions=dict(account.positions), equity=equity, **{**defaults, **known})


@dataclass(frozen=True)
class Decision:
    """approved, or rejected with a reason code and the numbers that broke the limit."""

    approved: bool
    code: str = ""
    message: str = ""
    values: dict = field(default_factory=dict)


APPROVED = Decision(approved=True)


def _state(account: RiskState | Account, market: Bar) -> RiskState:
    if isinstance(account, RiskState):
        return account
    # Bar.prices() converts numpy scalars one by one: tolist() is several times faster per order.
    return RiskState.from_account(account, dict(zip(market.symbols, market.close.tolist())))


def _reduces(before: float, after: float) -> bool:
    """Whether moving a position from `before` to `after` shrinks it without crossing zero."""
    return 0.0 <= after <= before if before > 0 else before <= after <= 0.0 and before != 0.0


def is_reducing(request: OrderRequest, positions: dict[str, float]) -> bool:
    """Whether `request` shrinks a held position without crossing zero (flat stays flat)."""
    held = positions.get(request.symbol, 0.0)
    return held != 0.0 and (request.side == "sell") == (held > 0) and request.quantity <= abs(held)


def _last_price(market: Bar, symbol: str) -> float | None:
    """The bar's close of `symbol`, or None where the bar has no usable one."""
    try:
        price = float(market.close[market.symbols.index(symbol)])
    except ValueError:
        return None
    return price if math.isfinite(price) and price > 0 else None


def _epoch(market: Bar, state: RiskState) -> float:
    if state.now is not None:
        return state.now
    moment = datetime.fromisoformat(market.time)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _open_at(hours: TradingHours, now: float) -> bool:
    # 1970-01-01 was a Thursday (weekday 3).
    return hours.is_open(int((now // 86400 + 3) % 7), int(now % 86400 // 60))


def _above(value: float, limit: float) -> bool:
    # Written as "not within" so that NaN (an unknown value) counts as above.
    return not value <= limit * (1 + TOLERANCE)


def _refuse(code: str, message: str, limit, value) -> Decision:
    return Decision(approved=False, code=code, message=message, values={"limit": limit, "value": value})


class _Order:
    """One request seen against the state: the facts every check reads, worked out once."""

    __slots__ = ("request", "symbol", "before", "after", "reducing", "last", "price")

    def __init__(self, request: OrderRequest, state: RiskState, market: Bar):
        self.request, self.symbol = request, request.symbol
        self.before = state.positions.get(request.symbol, 0.0)
        self.after = self.before + request.signed_quantity
        self.reducing = is_reducing(request, state.positions)
        self.last = _last_price(market, request.symbol)
        self.price = request.limit_price if request.order_type == "limit" else self.last


# -- the checks, in their order: each returns None (passed) or the refusal ----------------------------

def _kill_switch(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    level = state.kill_level
    if not level:
        return None
    if level == KillLevel.PAUSE:
        return _refuse("kill_switch_pause", KILL_SWITCH_PAUSE, str(level), o.after)
    if level >= KillLevel.HALT and not o.reducing:
        name = str(level)
        message = KILL_SWITCH_NOT_REDUCING.format(level=name, symbol=o.symbol, before=o.before, after=o.after)
        return _refuse(f"kill_switch_{name}_not_reducing", message, name, o.after)
    return None


def _symbol_allowed(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    allowed = limits.allowed_symbols
    if allowed is None or o.symbol in allowed or o.reducing:
        return None
    return _refuse("symbol_not_allowed", SYMBOL_NOT_ALLOWED.format(symbol=o.symbol), sorted(allowed), o.symbol)


def _trading_hours(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    hours = limits.trading_hours
    if hours is None:
        return None
    now = _epoch(market, state)
    if _open_at(hours, now):
        return None
    moment = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds")
    return _refuse("outside_trading_hours", OUTSIDE_TRADING_HOURS.format(time=moment, hours=hours), str(hours), moment)


def _price_known(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    valued = (limits.max_order_notional, limits.max_position_fraction, limits.max_gross_exposure)
    if (o.price is None and any(v is not None for v in valued)) or (o.last is None and limits.price_band_pct):
        return _refuse("no_price", NO_PRICE.format(symbol=o.symbol, index=market.index), "a price > 0", o.last)
    return None


def _price_band(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    band = limits.price_band_pct
    if band is None:
        return None
    away = abs(o.price - o.last) / o.last * 100.0
    if not _above(away, band):
        return None
    return _refuse("price_band", PRICE_BAND.format(price=o.price, value=away, last=o.last, limit=band), band, away)


def _order_notional(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    limit = limits.max_order_notional
    if limit is None:
        return None
    notional = o.request.quantity * o.price
    if not _above(notional, limit):
        return None
    return _refuse("max_order_notional", OVER_LIMIT.format(what="the order's notional", value=notional, limit=limit),
                   limit, notional)


def _position_units(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    limit = limits.max_position_units
    if limit is None or o.reducing or not _above(abs(o.after), limit):
        return None
    what = f"the {o.symbol} position in units"
    return _refuse("max_position_units", OVER_LIMIT.format(what=what, value=abs(o.after), limit=limit),
                   limit, abs(o.after))


def _position_fraction(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    limit = limits.max_position_fraction
    if limit is None or o.reducing:
        return None
    fraction = abs(o.after) * o.price / state.equity if state.equity > 0 else math.inf
    if not _above(fraction, limit):
        return None
    what = f"the {o.symbol} position as a fraction of equity"
    return _refuse("max_position_fraction", OVER_LIMIT.format(what=what, value=fraction, limit=limit), limit, fraction)


def _gross_of_others(positions: dict[str, float], market: Bar, symbol: str) -> float:
    """The absolute value of every position but `symbol`'s at the bar's closes (NaN where one of them
    has no close: unknown)."""
    # Walked along the bar, not the positions: no lookup table to build per order.
    closes = zip(market.symbols, market.close.tolist())
    held = [abs(q) * p for s, p in closes if s != symbol and (q := positions.get(s))]
    if any(positions[s] for s in positions.keys() - {*market.symbols, symbol}):
        return math.nan
    return sum(held)


def _gross_exposure(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    limit = limits.max_gross_exposure
    if limit is None or o.reducing:
        return None
    gross = _gross_of_others(state.positions, market, o.symbol) + abs(o.after) * o.price
    exposure = gross / state.equity if state.equity > 0 else math.inf
    if not _above(exposure, limit):
        return None
    what = "gross exposure (a multiple of equity)"
    return _refuse("max_gross_exposure", OVER_LIMIT.format(what=what, value=exposure, limit=limit), limit, exposure)


def _fall(start: float, equity: float, money: float | None, pct: float | None) -> tuple[float, float, str] | None:
    """(limit, fall, unit) of the first of the money and percent limits that a fall from `start` to
    `equity` breaks, else None."""
    fall = start - equity
    if money is not None and _above(fall, money):
        return money, fall, "money"
    if pct is not None:
        percent = fall / start * 100.0 if start > 0 else (math.inf if fall > 0 else 0.0)
        if _above(percent, pct):
            return pct, percent, "%"
    return None


def _daily_loss_breach(limits: Limits, state: RiskState) -> tuple[float, float, str] | None:
    return _fall(state.day_start_equity, state.equity, limits.daily_loss_money, limits.daily_loss_pct)


def _drawdown_breach(limits: Limits, state: RiskState) -> tuple[float, float, str] | None:
    return _fall(state.peak_equity, state.equity, limits.max_drawdown_money, limits.max_drawdown_pct)


def _daily_loss(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    found = None if o.reducing else _daily_loss_breach(limits, state)
    if found is None:
        return None
    limit, value, unit = found
    return _refuse("daily_loss", LOSS_BREACHED.format(what="today's loss", value=value, unit=unit, limit=limit),
                   limit, value)


def _max_drawdown(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    found = None if o.reducing else _drawdown_breach(limits, state)
    if found is None:
        return None
    limit, value, unit = found
    what = "the drawdown from the equity peak"
    return _refuse("max_drawdown", LOSS_BREACHED.format(what=what, value=value, unit=unit, limit=limit), limit, value)


def _orders_in_window(state: RiskState, now: float) -> int:
    cutoff = now - ORDER_WINDOW_S
    return len([t for t in state.recent_order_times if t > cutoff])


def _orders_per_minute(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    limit = limits.max_orders_per_minute
    if limit is None:
        return None
    count = _orders_in_window(state, _epoch(market, state)) + 1
    if count <= limit:
        return None
    return _refuse("max_orders_per_minute", TOO_MANY.format(what="orders in the last minute", value=count, limit=limit),
                   limit, count)


def _open_orders(o: _Order, limits: Limits, state: RiskState, market: Bar) -> Decision | None:
    limit = limits.max_open_orders
    if limit is None or state.open_orders + 1 <= limit:
        return None
    count = state.open_orders + 1
    return _refuse("max_open_orders", TOO_MANY.format(what="open orders", value=count, limit=limit), limit, count)


CHECKS = (_kill_switch, _symbol_allowed, _trading_hours, _price_known, _price_band, _order_notional, _position_units,
          _position_fraction, _gross_exposure, _daily_loss, _max_drawdown, _orders_per_minute, _open_orders)


def validate_trading_request(request: OrderRequest, *, limits: Limits, account: RiskState | Account,
                             market: Bar) -> Decision:
    """Whether `request` may go to the broker, given the account it would change and the bar it was
    decided at: APPROVED, or the first check (in CHECKS' order) that refuses it."""
    state = _state(account, market)
    order = _Order(request, state, market)
    for check in CHECKS:
        refusal = check(order, limits, state, market)
        if refusal is not None:
            return refusal
    return APPROVED


def breach(limits: Limits, account: RiskState | Account) -> KillLevel | None:
    """The kill level (limits.breach_level) that the daily-loss or drawdown limits trip now, else None.
    A plain Account has no equity marks to fall from, so it breaches nothing."""
    if not isinstance(account, RiskState):
        return None
    if _daily_loss_breach(limits, account) or _drawdown_breach(limits, account):
        return KillLevel.of(limits.breach_level)
    return None


# -- targets ------------------------------------------------------------------------------------------

def _target_level(limits: Limits, state: RiskState) -> KillLevel:
    """The level targets are clipped under: the latched one, raised to HALT while a loss limit is breached
    or equity cannot carry any position under the ratio limits (validation then passes only reducing
    orders). PAUSE stays PAUSE: it passes no order at all."""
    level = state.kill_level
    ratios = limits.max_position_fraction is not None or limits.max_gross_exposure is not None
    stuck = _daily_loss_breach(limits, state) or _drawdown_breach(limits, state) or (ratios and not state.equity > 0)
    return max(level, KillLevel.HALT) if stuck and level != KillLevel.PAUSE else level


def _frozen(symbol: str, close: float | None, limits: Limits, level: KillLevel, open_now: bool) -> bool:
    """Whether no order may move `symbol` now, so its target is the position it holds."""
    if level == KillLevel.PAUSE or not open_now or close is None:
        return True
    allowed = limits.allowed_symbols
    return level != KillLevel.FLATTEN and allowed is not None and symbol not in allowed


def _clip(target: float, held: float, close: float, limits: Limits, level: KillLevel, equity: float) -> float:
    """`target` within the position limits, moved from `held` by at most one max_order_notional."""
    if level == KillLevel.FLATTEN:
        target = 0.0
    elif level == KillLevel.HALT:
        target = min(max(target, min(held, 0.0)), max(held, 0.0))
    cap = math.inf if limits.max_position_units is None else limits.max_position_units
    if limits.max_position_fraction is not None:
        cap = min(cap, limits.max_position_fraction * equity / close if equity > 0 else 0.0)
    target = min(max(target, -cap), cap)
    step = math.inf if limits.max_order_notional is None else limits.max_order_notional / close
    return min(max(target, held - step), held + step)


def _order_room(limits: Limits, state: RiskState, now: float) -> float:
    """How many more orders the rate and open-order limits take now (each order may stay open)."""
    room = math.inf
    if limits.max_orders_per_minute is not None:
        room = limits.max_orders_per_minute - _orders_in_window(state, now)
    if limits.max_open_orders is not None:
        room = min(room, limits.max_open_orders - state.open_orders)
    return max(room, 0)


def _fewer_orders(out: dict[str, float], positions: dict[str, float], closes: dict, room: float) -> None:
    """Keep the moves of at most `room` targets: reducing ones first (they take risk off), then the
    largest; the others stay at their positions."""
    moves = [s for s, t in out.items() if t != positions.get(s, 0.0)]
    if len(moves) <= room:
        return
    moves.sort(key=lambda s: (not _reduces(positions.get(s, 0.0), out[s]),
                              -abs(out[s] - positions.get(s, 0.0)) * closes[s]))
    for symbol in moves[int(room):]:
        out[symbol] = positions.get(symbol, 0.0)


def _fit_gross(out: dict[str, float], positions: dict[str, float], closes: dict, budget: float) -> None:
    """Move the growing targets back toward their positions by one factor k in [0, 1], the largest that
    keeps gross exposure within `budget` (money) whichever of their orders have filled, once the reducing
    ones have: each growing symbol counted at the larger of its position and its target."""
    growing = {s: (positions.get(s, 0.0), t) for s, t in out.items()
               if t != positions.get(s, 0.0) and not _reduces(positions.get(s, 0.0), t)}
    if not growing:
        return
    settled = {**positions, **out}
    fixed = sum(abs(q) * (closes.get(s) or math.nan) for s, q in settled.items() if q and s not in growing)
    k = _growth_scale(fixed, [(q, t - q, closes[s]) for s, (q, t) in growing.items()], budget)
    if k < 1.0:
        for symbol, (held, target) in growing.items():
            out[symbol] = held + k * (target - held)


def _growth_scale(fixed: float, moves: list[tuple[float, float, float]], budget: float) -> float:
    """The largest k in [0, 1] that keeps fixed + sum(p * max(|q|, |q + k d|)) within `budget`, over the
    moves (position q, move d, price p).

    The sum is piecewise linear in k and never falls: a move away from zero adds p |d| per unit of k from
    the start; one through zero adds nothing until it is as large on the other side (k |d| = 2 |q|), then
    p |d| per unit. So walk its kinks in order and solve the segment where it reaches the budget."""
    level, slope = fixed + sum(p * abs(q) for q, _, p in moves), 0.0  # the sum is level + slope * k
    if not level <= budget:  # NaN (a price unknown) included
        return 0.0
    kinks = sorted((2 * abs(q) / abs(d), p * abs(d), 2 * p * abs(q)) if q * d < 0 else (0.0, p * abs(d), 0.0)
                   for q, d, p in moves)
    for at, rise, drop in kinks:
        if at >= 1.0:
            break
        if level + slope * at > budget:
            return (budget - level) / slope
        level, slope = level - drop, slope + rise
    return 1.0 if level + slope <= budget else (budget - level) / slope


def apply_risk_limits(targets: dict[str, float], *, limits: Limits, account: RiskState | Account,
                      market: Bar) -> dict[str, float]:
    """`targets` (units to hold per symbol) clipped so that the market orders taking the account there
    pass validate_trading_request when sent reducing ones first, then the others, in any order within
    each group.

    Per symbol: PAUSE, closed hours, no price, a symbol not allowed or a target that is not a finite
    number: the target is the position held.
    FLATTEN: 0 for every position (allowed or not). HALT, a breached loss limit, or no equity under the
    ratio limits: toward zero, never crossing it or growing. Then within max_position_units and
    max_position_fraction, and at most max_order_notional away from the position. Then at most as many
    moves as the rate and open-order limits take (reducing first), and growing moves scaled back to the
    gross exposure limit. Symbols not in `targets` keep their positions (but under FLATTEN)."""
    state = _state(account, market)
    level = _target_level(limits, state)
    now = _epoch(market, state) if limits.trading_hours or limits.max_orders_per_minute else 0.0
    open_now = limits.trading_hours is None or _open_at(limits.trading_hours, now)
    closes = {s: p if math.isfinite(p) and p > 0 else None for s, p in zip(market.symbols, market.close.tolist())}
    wanted = dict(targets)
    if level == KillLevel.FLATTEN:
        wanted.update({s: 0.0 for s, q in state.positions.items() if q})
    out = {}
    for symbol, target in wanted.items():
        held, close, target = state.positions.get(symbol, 0.0), closes.get(symbol), float(target)
        frozen = not math.isfinite(target) or _frozen(symbol, close, limits, level, open_now)
        out[symbol] = held if frozen else _clip(target, held, close, limits, level, state.equity)
    _fewer_orders(out, state.positions, closes, _order_room(limits, state, now))
    if limits.max_gross_exposure is not None:
        _fit_gross(out, state.positions, closes, limits.max_gross_exposure * state.equity)
    return out
