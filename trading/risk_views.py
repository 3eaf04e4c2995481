"""A deployment's risk on its pages: its limits page (/deployments/<id>/risk/: the tightest that apply,
each scope's, its own editable, its change history), its kill switch (trip at a level with a
confirmation, lift when latched), and what its page shows of the risk decisions and the switches that
reach it (risk_panel, for trading.views).

Someone else's deployment is a 404, as on every deployment page; staff see it and act only on their own
(the services' PermissionDenied: the 403 page). A refusal of the state of things (nothing latched to
lift) is a message on the deployment's page.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from common.access import may_act
from common.errors import REFUSALS, NotFound, message_of
from risk import selectors as risk_selectors
from risk.forms import TripForm
from risk.models import KillSwitch, Scope
from risk.services import emergency_stop, kill_switch_lift, limits_for, limits_rows
from risk.views import LIFTED, TRIPPED, limits_page
from trading.feeds import DECISIONS
from trading.models import Deployment
from trading.selectors import deployment_get

DECISIONS_SHOWN = 20
REFUSALS_SHOWN = 5
_SWITCH = KillSwitch.SwitchScope


def _get_or_404(request, pk: int) -> Deployment:
    try:
        return deployment_get(user=request.user, pk=pk)
    except NotFound as error:
        raise Http404(str(error)) from None


def risk_panel(deployment: Deployment, *, user) -> dict:
    """What a deployment's page shows of its risk: the latest decisions (newest first) and refusals,
    where its decisions feed resumes, the latched switches reaching it and, for those who may act, the
    trip form."""
    decisions = DECISIONS.newest_after(owner_pk=deployment.pk, after=0, limit=DECISIONS_SHOWN)
    switches = risk_selectors.switches_reaching(deployment_pk=deployment.pk, owner_id=deployment.owner_id)
    acts = may_act(user=user, owner_id=deployment.owner_id)
    return {
        "decisions": decisions[::-1],
        "refusals": DECISIONS.refused_newest(owner_pk=deployment.pk, limit=REFUSALS_SHOWN),
        "decisions_after": decisions[-1]["id"] if decisions else 0,
        "switches": switches,
        "own_switch": next((s for s in switches if s.scope == _SWITCH.DEPLOYMENT), None),
        "trip_form": TripForm() if acts else None,
    }


@login_required
def deployment_limits_view(request, pk: int):
    deployment = _get_or_404(request, pk)
    rows = {row.scope: row.as_limits() for row in limits_rows(deployment)}
    return limits_page(
        request, scope=Scope.DEPLOYMENT, target={"deployment": deployment},
        heading=f"Limits of deployment #{deployment.pk} · {deployment.name}", what=f"deployment #{deployment.pk}",
        may_edit=may_act(user=request.user, owner_id=deployment.owner_id),
        columns=[("This deployment's", rows.get(Scope.DEPLOYMENT)),
                 ("Effective (the tightest)", limits_for(deployment)), ("System-wide ceiling", rows.get(Scope.SYSTEM)),
                 ("Its owner's", rows.get(Scope.USER)), ("Its strategy's", rows.get(Scope.STRATEGY))],
        extra={"deployment": deployment},
    )


@login_required
@require_POST
def deployment_trip_view(request, pk: int):
    """Trip the deployment's own kill switch at the level chosen, once the confirmation is ticked (a
    message says what is missing otherwise)."""
    deployment = _get_or_404(request, pk)
    form = TripForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(message for errors in form.errors.values() for message in errors))
        return redirect("deployments:detail", pk=pk)
    try:
        emergency_stop(_SWITCH.DEPLOYMENT, form.cleaned_data["level"], actor=request.user, deployment=deployment,
                       reason=form.cleaned_data["reason"])
    except REFUSALS as error:
        messages.error(request, message_of(error))
    else:
        messages.warning(request, TRIPPED.format(level=form.cleaned_data["level"], what=f"deployment #{pk}"))
    return redirect("deployments:detail", pk=pk)


@login_required
@require_POST
def deployment_lift_view(request, pk: int):
    deployment = _get_or_404(request, pk)
    try:
        kill_switch_lift(_SWITCH.DEPLOYMENT, actor=request.user, deployment=deployment)
    except REFUSALS as error:
        messages.error(request, message_of(error))
    else:
        messages.success(request, LIFTED.format(what=f"deployment #{pk}"))
    return redirect("deployments:detail", pk=pk)
