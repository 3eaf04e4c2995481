"""Reading deployments and their record, for the pages, the API and the live stream.

Who sees what follows common.access, like sessions: owners and superusers see and act, staff
(operators) see every deployment and act only on their own, anyone else gets "not found". A deployment's
config is its owner's work: others see none of it.
"""
from __future__ import annotations

from django.db.models import QuerySet

from common.access import sees_everything
from common.errors import NotFound
from common.ids import MAX_ID, is_id
from trading.models import Deployment, DeploymentEvent, EquityPoint, ExchangeAccount, Fill, Order, Position

DEPLOYMENT_NOT_FOUND = "no deployment {pk}"
PAGE_MAX = 1000


def deployment_list(*, user, status: str | None = None, mode: str | None = None) -> QuerySet[Deployment]:
    """The deployments `user` may see, newest first."""
    deployments = Deployment.objects.select_related("owner", "strategy", "account")
    if not sees_everything(user):
        deployments = deployments.filter(owner=user)
    if status:
        deployments = deployments.filter(status=status)
    if mode:
        deployments = deployments.filter(mode=mode)
    return deployments


def deployment_get(*, user, pk: int) -> Deployment:
    """One deployment `user` may see; NotFound for a missing one and someone else's alike."""
    try:
        if not is_id(pk):
            raise Deployment.DoesNotExist
        return deployment_list(user=user).get(pk=pk)
    except Deployment.DoesNotExist:
        raise NotFound(DEPLOYMENT_NOT_FOUND.format(pk=pk)) from None


def _after(rows: QuerySet, after: int, limit: int) -> list:
    """Up to `limit` rows whose id is above `after`, by id: an id cursor, so rows appended while a client
    pages are neither skipped nor repeated."""
    limit = max(1, min(int(limit), PAGE_MAX))
    return list(rows.filter(pk__gt=min(max(after, 0), MAX_ID)).order_by("pk")[:limit])


def order_page(*, deployment: Deployment, after: int = 0, limit: int = 100) -> list[Order]:
    return _after(Order.objects.filter(deployment=deployment), after, limit)


def fill_page(*, deployment: Deployment, after: int = 0, limit: int = 100) -> list[Fill]:
    return _after(Fill.objects.filter(deployment=deployment), after, limit)


def equity_page(*, deployment: Deployment, after: int = 0, limit: int = 1000) -> list[EquityPoint]:
    return _after(EquityPoint.objects.filter(deployment=deployment), after, limit)


def event_page(*, deployment: Deployment, after: int = 0, limit: int = 100) -> list[DeploymentEvent]:
    return _after(DeploymentEvent.objects.filter(deployment=deployment), after, limit)


def open_orders(*, deployment: Deployment) -> list[Order]:
    return list(Order.objects.filter(deployment=deployment, status__in=["new", "accepted", "partially_filled"])
                .order_by("pk"))


def positions(*, deployment: Deployment) -> list[Position]:
    """The deployment's positions, flat ones included only while they were ever held."""
    return list(Position.objects.filter(deployment=deployment).order_by("symbol"))


def trades_live(user) -> bool:
    """Whether one of `user`'s deployments is trading live now: every page's nav says so."""
    return bool(user.is_authenticated) and Deployment.objects.filter(
        owner=user, mode=Deployment.Mode.LIVE, status=Deployment.Status.RUNNING).exists()


def exchange_accounts(*, user) -> QuerySet[ExchangeAccount]:
    return ExchangeAccount.objects.filter(owner=user)
