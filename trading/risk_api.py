"""The risk API of what needs a deployment found with trading's access rules (risk sits below trading
and never imports it): a deployment's limits and risk decisions under /api/deployments/{id}/, and the
kill switches under /api/risk/kill-switch.

Someone else's deployment is a 404, as everywhere; staff see every deployment and act only on their own
(the services' PermissionDenied: 403). The services decide the rest: 403 for the global switch unless
a superuser, 409 for lifting a switch that is not latched, 422 naming the field.

Kill switches (risk.services.emergency_stop): global stops every deployment, user all of yours,
deployment one; each stays latched until lifted, and a second trip raises its level, never lowers it.
"""
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Query, Router

from common.ids import MAX_ID
from common.schemas import ERRORS
from risk import selectors as risk_selectors
from risk.models import KillSwitch, Scope
from risk.schemas import (
    DeploymentLimitsOut,
    KillSwitchIn,
    KillSwitchLiftIn,
    KillSwitchOut,
    LimitsIn,
    RiskDecisionPageOut,
)
from risk.services import emergency_stop, kill_switch_lift, limits_for, limits_set
from trading.models import Deployment
from trading.selectors import deployment_get

deployment_risk_router = Router(tags=["risk"])
kill_switch_router = Router(tags=["risk"])

ONLY_FOR_DEPLOYMENT = "only a deployment-scoped switch names a deployment; leave it null for scope {scope}"
PAGE_LIMIT = Query(100, ge=1, le=risk_selectors.PAGE_MAX,
                   description=f"At most this many rows (1..{risk_selectors.PAGE_MAX})")
AFTER = Query(0, ge=0, le=MAX_ID, description="Rows with an id above this: the previous page's next_after")
_SWITCH = KillSwitch.SwitchScope


def _limits(deployment: Deployment) -> dict:
    record = risk_selectors.limits_record(Scope.DEPLOYMENT, deployment=deployment)
    return {**record, "effective": limits_for(deployment).as_dict()}


@deployment_risk_router.get("/{deployment_id}/risk-limits", response={200: DeploymentLimitsOut, **ERRORS})
def get_deployment_limits(request: HttpRequest, deployment_id: int):
    """The deployment's own limits, their latest changes, and the tightest of every limit that applies to
    it (the system-wide ceiling, its owner's, its strategy's, its own): what its orders are checked
    against."""
    return _limits(deployment_get(user=request.auth, pk=deployment_id))


@deployment_risk_router.put("/{deployment_id}/risk-limits", response={200: DeploymentLimitsOut, **ERRORS})
def set_deployment_limits(request: HttpRequest, deployment_id: int, payload: LimitsIn):
    """Replace the deployment's own limits (its owner, a superuser); its next bar is held to them."""
    deployment = deployment_get(user=request.auth, pk=deployment_id)
    limits_set(scope=Scope.DEPLOYMENT, limits=payload.limits(), actor=request.auth, deployment=deployment)
    return _limits(deployment)


@deployment_risk_router.get("/{deployment_id}/risk-decisions", response={200: RiskDecisionPageOut, **ERRORS})
def deployment_risk_decisions(request: HttpRequest, deployment_id: int, after: int = AFTER, limit: int = PAGE_LIMIT):
    """What the risk checks said of each order of the deployment, with an id above `after`, by id (an id
    cursor, as the orders'): approved, or refused with a reason code and the numbers that broke the limit."""
    deployment = deployment_get(user=request.auth, pk=deployment_id)
    items = risk_selectors.decision_page(deployment_pk=deployment.pk, after=after, limit=limit)
    return {"items": items, "next_after": items[-1].pk if items else after}


def _target(request: HttpRequest, scope: str, deployment_id: int | None) -> dict:
    """The services' keywords naming the switch's target: nothing (global), you (user), or the deployment
    (one you may see; the service checks you may act on it)."""
    if scope != _SWITCH.DEPLOYMENT:
        if deployment_id is not None:
            raise ValidationError({"deployment": ONLY_FOR_DEPLOYMENT.format(scope=scope)})
        return {"user": request.auth} if scope == _SWITCH.USER else {}
    # None: the service refuses it, naming the field.
    deployment = None if deployment_id is None else deployment_get(user=request.auth, pk=deployment_id)
    return {"deployment": deployment}


@kill_switch_router.get("", response={200: list[KillSwitchOut], **ERRORS})
def list_kill_switches(request: HttpRequest):
    """The latched switches you may see: the global one, your own and your deployments' (staff and
    superusers: every one), oldest first."""
    return risk_selectors.switches_visible(user=request.auth)


@kill_switch_router.post("", response={200: KillSwitchOut, **ERRORS})
def trip_kill_switch(request: HttpRequest, payload: KillSwitchIn):
    """Trip a kill switch at `level`: latched until lifted; a switch latched there already is raised to
    `level` when that is more severe, never lowered."""
    target = _target(request, payload.scope, payload.deployment)
    return emergency_stop(payload.scope, payload.level, actor=request.auth, reason=payload.reason, **target)


@kill_switch_router.post("/lift", response={200: KillSwitchOut, **ERRORS})
def lift_kill_switch(request: HttpRequest, payload: KillSwitchLiftIn):
    """Lift the switch latched on the target (409 when none is): its deployments trade again from their
    next bar, unless another switch still reaches them."""
    target = _target(request, payload.scope, payload.deployment)
    return kill_switch_lift(payload.scope, actor=request.auth, **target)
