"""Helpers of the deployment page and stream tests: deployments and their record written as the trading
process writes them (trading.ledger's rows, the one status transition function), without a policy or
a broker, so a test says exactly which numbers the page and the stream must show."""
from django.db import transaction
from django.utils import timezone

from trading.models import Deployment, DeploymentEvent, EquityPoint, Fill, Order, Position
from trading.services import deployment_transition

# How to reach each status through legal moves only.
PATH_TO = {
    "pending": [],
    "running": ["running"],
    "paused": ["running", "paused"],
    "halted": ["running", "halted"],
    "stopped": ["running", "stopped"],
    "failed": ["failed"],
}


def make_deployment(strategy, *, owner=None, status: str = "running", mode: str = "paper", account=None,
                    name: str = "", error: str = "") -> Deployment:
    owner = owner or strategy.owner
    deployment = Deployment.objects.create(
        owner=owner, strategy=strategy, name=name or f"{strategy.name} deployed", mode=mode,
        feed="live" if mode == "live" else "replay", account=account, config={}, dataset_name="synthetic",
        symbols=["A0", "A1"], checkpoint_path="/nonexistent/policy.pt", checkpoint_sha256="0" * 64,
        fee_rate=0.001, initial_cash=100_000.0,
    )
    for to in PATH_TO[status]:
        deployment = deployment_transition(deployment=deployment, to=to, error=error if to == status else "")
    return deployment


def trade_bar(deployment: Deployment, *, bar: int, equity: float, cash: float, benchmark: float,
              positions: dict[str, float] | None = None, price: float = 10.0) -> EquityPoint:
    """One bar's record in one transaction, as the trading process commits it: its equity point, the
    positions marked at `price`, and the deployment's running figures."""
    with transaction.atomic():
        point = EquityPoint.objects.create(deployment=deployment, bar_index=bar, time=f"2003-01-{bar + 1:02d}",
                                           equity=equity, cash=cash, benchmark=benchmark)
        for symbol, quantity in (positions or {}).items():
            Position.objects.update_or_create(deployment=deployment, symbol=symbol,
                                              defaults={"quantity": quantity, "last_price": price})
        current = Deployment.objects.get(pk=deployment.pk)
        Deployment.objects.filter(pk=deployment.pk).update(
            equity=equity, cash=cash, peak_equity=max(equity, current.peak_equity or equity),
            day_start_equity=current.day_start_equity or equity, last_bar=bar, last_bar_time=point.time,
            bars_done=current.bars_done + 1, heartbeat_at=timezone.now(),
        )
    deployment.refresh_from_db()
    return point


def place_order(deployment: Deployment, *, bar: int, symbol: str = "A0", side: str = "buy", quantity: float = 2.0,
                status: str = "accepted") -> Order:
    return Order.objects.create(deployment=deployment, client_order_id=f"d{deployment.pk}-{bar}-{symbol}",
                                bar_index=bar, bar_time=f"2003-01-{bar + 1:02d}", symbol=symbol, side=side,
                                quantity=quantity, status=status)


def fill_order(order: Order, *, price: float, fee: float = 0.5) -> Fill:
    """The broker's fill of all of `order`: the order filled, the fill recorded, in one transaction."""
    with transaction.atomic():
        Order.objects.filter(pk=order.pk).update(status="filled", filled_quantity=order.quantity,
                                                 average_price=price, fees=fee)
        return Fill.objects.create(deployment=order.deployment, order=order, fill_id=f"fill-{order.pk}",
                                   symbol=order.symbol, side=order.side, quantity=order.quantity, price=price,
                                   fee=fee, time=order.bar_time)


def add_event(deployment: Deployment, message: str, severity: str = "info") -> DeploymentEvent:
    return DeploymentEvent.objects.create(deployment=deployment, severity=severity, message=message)
