"""Helpers of the risk API, page and stream tests: risk decisions written as the trading process writes
them (trading.guard.Guard.record: one row per order checked), and a strategy of someone else's."""
from risk.models import RiskDecision
from strategies.models import Strategy


def decide(deployment, *, bar: int, symbol: str = "A0", side: str = "buy", quantity: float = 2.0,
           code: str = "", message: str = "", values: dict | None = None) -> RiskDecision:
    """The decision on one order of `deployment` at `bar`: approved, or refused with `code`."""
    return RiskDecision.objects.create(
        deployment=deployment, client_order_id=f"d{deployment.pk}-{bar}-{symbol}", symbol=symbol, side=side,
        quantity=quantity, approved=not code, code=code, message=message, values=values or {}, bar_index=bar)


def strategy_of(owner, dataset, name: str = "theirs") -> Strategy:
    return Strategy.objects.create(owner=owner, name=name, task=Strategy.Task.PORTFOLIO_MANAGEMENT, agent="ppo",
                                   dataset=dataset, config={"task": "portfolio_management", "dataset": "synthetic",
                                                            "agent": "ppo"})
