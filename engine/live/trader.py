"""One deployment's work at one closed bar: bring the broker up to the bar, value the account, ask the
policy for orders, pass each through the risk check, and send the approved ones.

The caller (the trading app's process) supplies the check and records what happened; nothing here
knows about a database. `trade_bar` is the only path from a policy to a broker, so no order reaches
a broker without the check having approved it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.live.orders import Account, OrderRequest
from engine.live.policy import Adjust, Policy
from engine.live.venue import Bar, Broker, Feed, Update


@dataclass(frozen=True)
class Verdict:
    """The risk check's answer about one order: approved, or not with a reason code and message."""

    approved: bool
    code: str = ""
    message: str = ""


# (request, account before it, bar) -> Verdict. The trading app passes risk's validate_trading_request.
Check = Callable[[OrderRequest, Account, Bar], Verdict]
# Called with every broker update as it happens (sync first, then each submission), so the record
# is written before the next call to the broker.
Record = Callable[[Update], None]


@dataclass
class BarOutcome:
    """What one bar did. equity: the account marked at the bar's close before its orders (the value
    a backtest's equity curve has at that bar); equity_after: after them (fees paid)."""

    bar: Bar
    equity: float
    equity_after: float
    account: Account
    requests: list[OrderRequest] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)


def trade_bar(bar: Bar, *, feed: Feed, policy: Policy, broker: Broker, check: Check, record: Record,
              id_prefix: str, decide: bool = True, adjust: Adjust | None = None) -> BarOutcome:
    """Run one closed bar. decide=False only marks the account (the last bar of a replay, which has no
    later bar to hold a position into: a backtest does not trade there either). adjust: the risk
    limits' clipping of the policy's targets (risk.controller.apply_risk_limits), before orders are made."""
    record(broker.sync(bar))
    account = broker.account()
    prices = bar.prices()
    equity = account.equity(prices)
    outcome = BarOutcome(bar=bar, equity=equity, equity_after=equity, account=account)
    if not decide:
        return outcome
    requests = policy.orders(feed.market(), bar.index, account, bar.close, id_prefix=id_prefix, adjust=adjust)
    send(requests, bar=bar, broker=broker, check=check, record=record, outcome=outcome)
    outcome.account = broker.account()
    outcome.equity_after = outcome.account.equity(prices)
    return outcome


def send(requests: list[OrderRequest], *, bar: Bar, broker: Broker, check: Check, record: Record,
         outcome: BarOutcome) -> None:
    """Each request through `check`, against the account as the orders before it left it, then to the
    broker if approved: the one place an order reaches a broker."""
    for request in requests:
        verdict = check(request, broker.account(), bar)
        outcome.requests.append(request)
        outcome.verdicts.append(verdict)
        if verdict.approved:
            record(broker.submit(request, bar))
