"""The JSON API of deployments and exchange accounts. Mounted by trademaster_web.api, which turns errors
into its one shape: 404 for someone else's deployment, 403 for a staff member acting on one, 409 for a
move its status does not allow, 503 when exchange keys cannot be sealed (no TRADEMASTER_EXCHANGE_KEY).

Exchange keys go in once and never come out: no answer, log line or error message holds them."""
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables
from ninja import Query, Router, Status
from ninja.pagination import paginate

from common.errors import NotFound
from common.ids import MAX_ID
from common.schemas import ERRORS, ErrorOut
from sessions.selectors import session_get
from trading import selectors, services
from trading.models import ExchangeAccount
from trading.schemas import (
    DeploymentDetailOut,
    DeploymentIn,
    DeploymentOut,
    EquityPageOut,
    EventPageOut,
    ExchangeAccountIn,
    ExchangeAccountOut,
    FillPageOut,
    Mode,
    OrderPageOut,
    PositionOut,
)
from trading.schemas import Status as DeploymentStatusName

deployments_router = Router(tags=["deployments"])
exchange_accounts_router = Router(tags=["exchange accounts"])

PAGE_LIMIT = Query(100, ge=1, le=selectors.PAGE_MAX, description=f"At most this many rows (1..{selectors.PAGE_MAX})")
AFTER = Query(0, ge=0, le=MAX_ID, description="Rows with an id above this: the previous page's next_after")


def _account(request: HttpRequest, name: str | None) -> ExchangeAccount | None:
    # An account name that is not one of yours is bad input on that field, not a missing page.
    if name is None:
        return None
    try:
        return services.exchange_account_get(owner=request.auth, name=name)
    except NotFound as error:
        raise ValidationError({"account": str(error)}) from None


def _page(items: list, after: int) -> dict:
    return {"items": items, "next_after": items[-1].pk if items else after}


@deployments_router.get("", response={200: list[DeploymentOut], **ERRORS})
@paginate
def list_deployments(request: HttpRequest, status: DeploymentStatusName | None = None, mode: Mode | None = None):
    """Your deployments, newest first (staff: everyone's); `?status=running`, `?mode=live` to filter."""
    return selectors.deployment_list(user=request.auth, status=status, mode=mode)


@deployments_router.post("", response={201: DeploymentDetailOut, **ERRORS})
def create_deployment(request: HttpRequest, payload: DeploymentIn):
    """Deploy a completed training's best checkpoint: a pending deployment that a trading process
    (`manage.py trade`) starts. 404 for a session you cannot see; 422 naming the field for what cannot
    be deployed (a session that is no completed training, live mode without an account, ...)."""
    session = session_get(user=request.auth, pk=payload.session)
    values = payload.dict(exclude={"session", "account"})
    deployment = services.deployment_create(session=session, user=request.auth,
                                            account=_account(request, payload.account), **values)
    return Status(201, deployment)


@deployments_router.get("/{deployment_id}", response={200: DeploymentDetailOut, **ERRORS})
def get_deployment(request: HttpRequest, deployment_id: int):
    return selectors.deployment_get(user=request.auth, pk=deployment_id)


@deployments_router.post("/{deployment_id}/pause", response={200: DeploymentDetailOut, **ERRORS})
def pause_deployment(request: HttpRequest, deployment_id: int):
    """Running -> paused: no order from the next bar on (open orders stay)."""
    deployment = selectors.deployment_get(user=request.auth, pk=deployment_id)
    return services.deployment_pause(deployment=deployment, user=request.auth)


@deployments_router.post("/{deployment_id}/resume", response={200: DeploymentDetailOut, **ERRORS})
def resume_deployment(request: HttpRequest, deployment_id: int):
    """Paused or halted -> running, from the next bar on (a halted one is reconciled again first)."""
    deployment = selectors.deployment_get(user=request.auth, pk=deployment_id)
    return services.deployment_resume(deployment=deployment, user=request.auth)


@deployments_router.post("/{deployment_id}/stop", response={200: DeploymentDetailOut, **ERRORS})
def stop_deployment(request: HttpRequest, deployment_id: int):
    """Any active status -> stopped, for good: the trading process lets it go before its next bar."""
    deployment = selectors.deployment_get(user=request.auth, pk=deployment_id)
    return services.deployment_stop(deployment=deployment, user=request.auth)


@deployments_router.get("/{deployment_id}/orders", response={200: OrderPageOut, **ERRORS})
def deployment_orders(request: HttpRequest, deployment_id: int, after: int = AFTER, limit: int = PAGE_LIMIT):
    """The deployment's orders with an id above `after`, by id. Poll with `after` = the last `next_after`:
    orders recorded meanwhile are neither skipped nor repeated."""
    deployment = selectors.deployment_get(user=request.auth, pk=deployment_id)
    return _page(selectors.order_page(deployment=deployment, after=after, limit=limit), after)


@deployments_router.get("/{deployment_id}/fills", response={200: FillPageOut, **ERRORS})
def deployment_fills(request: HttpRequest, deployment_id: int, after: int = AFTER, limit: int = PAGE_LIMIT):
    """The deployment's fills with an id above `after`, by id (an id cursor, as the orders')."""
    deployment = selectors.deployment_get(user=request.auth, pk=deployment_id)
    return _page(selectors.fill_page(deployment=deployment, after=after, limit=limit), after)


@deployments_router.get("/{deployment_id}/equity", response={200: EquityPageOut, **ERRORS})
def deployment_equity(
    request: HttpRequest, deployment_id: int, after: int = AFTER,
    limit: int = Query(selectors.PAGE_MAX, ge=1, le=selectors.PAGE_MAX),
):
    """The deployment's equity points (one per bar) with an id above `after`, by id."""
    deployment = selectors.deployment_get(user=request.auth, pk=deployment_id)
    return _page(selectors.equity_page(deployment=deployment, after=after, limit=limit), after)


@deployments_router.get("/{deployment_id}/events", response={200: EventPageOut, **ERRORS})
def deployment_events(request: HttpRequest, deployment_id: int, after: int = AFTER, limit: int = PAGE_LIMIT):
    """What happened to the deployment (started, paused, halted and why, ...) with an id above `after`,
    oldest first."""
    deployment = selectors.deployment_get(user=request.auth, pk=deployment_id)
    return _page(selectors.event_page(deployment=deployment, after=after, limit=limit), after)


@deployments_router.get("/{deployment_id}/positions", response={200: list[PositionOut], **ERRORS})
def deployment_positions(request: HttpRequest, deployment_id: int):
    """Units held of each symbol it ever held, with the last price seen."""
    deployment = selectors.deployment_get(user=request.auth, pk=deployment_id)
    return selectors.positions(deployment=deployment)


@exchange_accounts_router.get("", response={200: list[ExchangeAccountOut], **ERRORS})
@paginate
def list_exchange_accounts(request: HttpRequest):
    """Your exchange accounts, by name: never their keys."""
    return selectors.exchange_accounts(user=request.auth)


@exchange_accounts_router.post("", response={201: ExchangeAccountOut, 503: ErrorOut, **ERRORS})
@sensitive_variables("payload")
def create_exchange_account(request: HttpRequest, payload: ExchangeAccountIn):
    """Store your API keys at an exchange, sealed: they are never shown again, only used by the trading
    process. 409 for a name you already use; 503 when the server has no key to seal them with
    (TRADEMASTER_EXCHANGE_KEY unset)."""
    return Status(201, services.exchange_account_create(owner=request.auth, **payload.dict()))
