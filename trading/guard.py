"""The risk controller as one bar of one deployment meets it: the limits and latched kill level that apply,
the account's marks (equity now, at the day's start, at its peak), the orders sent in the last minute,
and every decision made, for the record. The checks themselves are risk.controller's plain functions."""
from __future__ import annotations

import math
import time

from engine.live.orders import Account, OrderRequest
from engine.live.trader import Verdict
from engine.live.venue import Bar
from risk.controller import KillLevel, RiskState, apply_risk_limits, breach, validate_trading_request
from risk.limits import Limits
from risk.models import RiskDecision
from trading.models import Deployment
from trading.runtime import Runtime

ORDER_WINDOW_S = 60.0


class Guard:
    def __init__(self, deployment: Deployment, runtime: Runtime, bar: Bar, *, limits: Limits, level: KillLevel):
        self.deployment, self.runtime, self.bar = deployment, runtime, bar
        self.limits, self.level = limits, level
        self.prices = bar.prices()
        self.decisions: list[tuple[OrderRequest, object]] = []
        self.refused: list[tuple[OrderRequest, str, str]] = []

    def state(self, account: Account) -> RiskState:
        equity = account.equity(self.prices)
        d = self.deployment
        same_day = d.day == self.bar.time[:10] and d.day_start_equity is not None
        now = time.time()
        sent = self.runtime.sent
        while sent and sent[0] < now - ORDER_WINDOW_S:
            sent.popleft()
        return RiskState(cash=account.cash, positions=dict(account.positions), equity=equity,
                         day_start_equity=d.day_start_equity if same_day else equity,
                         peak_equity=max(d.peak_equity or equity, equity), kill_level=self.level,
                         open_orders=len(self.runtime.broker.open_orders()), recent_order_times=tuple(sent), now=now)

    def check(self, request: OrderRequest, account: Account, bar: Bar) -> Verdict:
        decision = validate_trading_request(request, limits=self.limits, account=self.state(account), market=bar)
        self.decisions.append((request, decision))
        if decision.approved:
            self.runtime.sent.append(time.time())
        else:
            self.refused.append((request, decision.code, decision.message))
        return Verdict(approved=decision.approved, code=decision.code, message=decision.message)

    def adjust(self, targets: dict[str, float]) -> dict[str, float]:
        return apply_risk_limits(targets, limits=self.limits, account=self.state(self.runtime.broker.account()),
                                 market=self.bar)

    def breached(self, account: Account) -> KillLevel | None:
        """The level the loss limits trip now, when it is above the latched one."""
        level = breach(self.limits, self.state(account))
        return level if level is not None and level > self.level else None

    def record(self) -> None:
        RiskDecision.objects.bulk_create([
            RiskDecision(deployment=self.deployment, client_order_id=request.client_order_id, symbol=request.symbol,
                         side=request.side, quantity=request.quantity, approved=decision.approved,
                         code=decision.code, message=decision.message, values=_plain(decision.values),
                         bar_index=self.bar.index)
            for request, decision in self.decisions
        ])


def _plain(values: dict) -> dict:
    """The limit's numbers as JSON can hold them (NaN, an unknown value, and infinity as None)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}
