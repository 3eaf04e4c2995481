"""The JSON API of risk limits: the system-wide ceiling, your own (user) limits and a strategy's, under
/api/risk/limits/. A deployment's limits, its decisions and the kill switches, which find deployments
with trading's access rules, are trading.risk_api's.

GET answers the scope's limits (every one null while never set), who set them last and the latest
changes. PUT replaces them, recorded as a change (risk.services.limits_set): 403 for the system-wide
ceiling unless a superuser, 404 for someone else's strategy (a superuser sees and sets every one), 422
naming each field above the system-wide ceiling (or left unset where the ceiling sets it).
"""
from django.http import HttpRequest
from ninja import Router

from common.schemas import ERRORS
from risk import selectors
from risk.models import Scope
from risk.schemas import LimitsIn, LimitsRecordOut
from risk.services import limits_set
from strategies.selectors import strategy_get

limits_router = Router(tags=["risk"])


@limits_router.get("/system", response={200: LimitsRecordOut, **ERRORS})
def get_system_limits(request: HttpRequest):
    """The system-wide ceiling: nobody's limits may be looser. Anyone logged in may read it."""
    return selectors.limits_record(Scope.SYSTEM)


@limits_router.put("/system", response={200: LimitsRecordOut, **ERRORS})
def set_system_limits(request: HttpRequest, payload: LimitsIn):
    """Replace the system-wide ceiling (superusers)."""
    limits_set(scope=Scope.SYSTEM, limits=payload.limits(), actor=request.auth)
    return selectors.limits_record(Scope.SYSTEM)


@limits_router.get("/user", response={200: LimitsRecordOut, **ERRORS})
def get_user_limits(request: HttpRequest):
    """Your own limits: every deployment of yours is held to them."""
    return selectors.limits_record(Scope.USER, user=request.auth)


@limits_router.put("/user", response={200: LimitsRecordOut, **ERRORS})
def set_user_limits(request: HttpRequest, payload: LimitsIn):
    limits_set(scope=Scope.USER, limits=payload.limits(), actor=request.auth, user=request.auth)
    return selectors.limits_record(Scope.USER, user=request.auth)


@limits_router.get("/strategies/{strategy_id}", response={200: LimitsRecordOut, **ERRORS})
def get_strategy_limits(request: HttpRequest, strategy_id: int):
    """A strategy's limits: every deployment of it is held to them."""
    strategy = strategy_get(user=request.auth, pk=strategy_id)
    return selectors.limits_record(Scope.STRATEGY, strategy=strategy)


@limits_router.put("/strategies/{strategy_id}", response={200: LimitsRecordOut, **ERRORS})
def set_strategy_limits(request: HttpRequest, strategy_id: int, payload: LimitsIn):
    strategy = strategy_get(user=request.auth, pk=strategy_id)
    limits_set(scope=Scope.STRATEGY, limits=payload.limits(), actor=request.auth, strategy=strategy)
    return selectors.limits_record(Scope.STRATEGY, strategy=strategy)
