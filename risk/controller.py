"""The risk controller's checks: plain functions over plain data (no ORM inside), so they are fast and
can be proven by property tests.

    decision = validate_trading_request(request, limits=limits, account=account, market=bar)

Every order of every deployment passes validate_trading_request before a broker sees it
(engine.live.trader.trade_bar is the only path, and the trading app passes this function as its check).
The limits themselves (per user, strategy and deployment, system-wide ceilings, the latched kill switch)
come with the risk issue; until then no limit is set and every request is approved, through this path.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.live.orders import Account, OrderRequest
from engine.live.venue import Bar


@dataclass(frozen=True)
class Limits:
    """The limits that apply to one deployment (the tightest of its user's, strategy's and its own)."""


NO_LIMITS = Limits()


@dataclass(frozen=True)
class Decision:
    """approved, or rejected with a reason code and the numbers that broke the limit."""

    approved: bool
    code: str = ""
    message: str = ""
    values: dict = field(default_factory=dict)


APPROVED = Decision(approved=True)


def validate_trading_request(request: OrderRequest, *, limits: Limits, account: Account, market: Bar) -> Decision:
    """Whether `request` may go to the broker, given the account it would change and the bar it was
    decided at."""
    return APPROVED
