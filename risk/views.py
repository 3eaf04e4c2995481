"""The risk pages: your limits, a strategy's and the system-wide ceiling (each with its change history),
and the kill switches (/risk/kill-switch/: yours, and the global one for superusers). A deployment's
limits and kill switch are on its own pages (trading.risk_views), which use limits_page below.

Thin: parse the request, call a selector or a service, render. risk.services decides who may set
limits or trip and lift a switch; a page offers a form only to those it would let (common.access's
rule), and a refusal comes back on the form or as a message; PermissionDenied is the 403 page.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from common.access import may_act
from common.errors import REFUSALS, NotFound, message_of
from risk import selectors
from risk.forms import LimitsForm, TripForm
from risk.limits import Limits
from risk.models import KillSwitch, Scope
from risk.presenters import change_rows, limits_rows
from risk.services import emergency_stop, kill_switch_lift, limits_set
from strategies.models import Strategy
from strategies.selectors import strategy_get, strategy_list

LIMITS_SAVED = "Limits saved: {what} is held to them from the next bar on."
TRIPPED = "Kill switch tripped at {level}: {what} stopped until someone lifts it."
LIFTED = "Kill switch lifted: {what} may trade again from the next bar."
NO_SUCH_USER = "no user {value!r}"
NO_SUCH_SWITCH = "no kill switch {scope!r} on this page"
_SWITCH = KillSwitch.SwitchScope


def limits_page(request, *, scope: str, target: dict, heading: str, what: str, may_edit: bool,
                columns: list[tuple[str, Limits | None]], extra: dict | None = None):
    """GET: a scope's limits beside the others that bind it (`columns`: heading and limits, the scope's
    own first), its form for those who `may_edit`, and its changes. POST: limits_set, then the page
    again (a refusal: the form with the reasons on its inputs)."""
    row = selectors.limits_row(scope, **target)
    own = row.as_limits() if row else Limits()
    form = None
    if may_edit or request.method == "POST":
        # A POST goes to the service whoever sends it: it decides (PermissionDenied: the 403 page).
        data = request.POST if request.method == "POST" else None
        form = LimitsForm(data, initial=LimitsForm.initial_of(own))
        if data is not None and form.is_valid():
            try:
                limits_set(scope=scope, limits=form.limits, actor=request.user, **target)
            except REFUSALS as error:
                form.add_service_error(error)
            else:
                messages.success(request, LIMITS_SAVED.format(what=what))
                return redirect(request.path)
    return render(request, "risk/limits.html", {
        "heading": heading, "scope": scope, "row": row, "form": form,
        "headings": [name for name, _ in columns], "rows": limits_rows([limits for _, limits in columns]),
        "changes": change_rows(selectors.limit_changes(row)), **(extra or {}),
    })


@login_required
def user_limits_view(request):
    ceiling = selectors.system_limits()
    row = selectors.limits_row(Scope.USER, user=request.user)
    strategies = strategy_list(user=request.user).filter(owner=request.user).order_by("name")
    return limits_page(request, scope=Scope.USER, target={"user": request.user}, heading="Your limits",
                       what="every deployment of yours", may_edit=True,
                       columns=[("Yours", row.as_limits() if row else None), ("System-wide ceiling", ceiling)],
                       extra={"strategies": strategies})


@login_required
def system_limits_view(request):
    row = selectors.limits_row(Scope.SYSTEM)
    return limits_page(request, scope=Scope.SYSTEM, target={}, heading="System-wide ceiling",
                       what="every deployment", may_edit=request.user.is_superuser,
                       columns=[("System-wide ceiling", row.as_limits() if row else None)])


def _strategy_or_404(request, pk: int) -> Strategy:
    try:
        return strategy_get(user=request.user, pk=pk)
    except NotFound as error:
        raise Http404(str(error)) from None


@login_required
def strategy_limits_view(request, pk: int):
    strategy = _strategy_or_404(request, pk)
    row = selectors.limits_row(Scope.STRATEGY, strategy=strategy)
    return limits_page(request, scope=Scope.STRATEGY, target={"strategy": strategy},
                       heading=f"Limits of strategy “{strategy.name}”", what="every deployment of this strategy",
                       may_edit=may_act(user=request.user, owner_id=strategy.owner_id),
                       columns=[("This strategy's", row.as_limits() if row else None),
                                ("System-wide ceiling", selectors.system_limits())],
                       extra={"strategy": strategy})


# Kill switches ------------------------------------------------------------------------------------

def _switch_user(request):
    """The user whose switch a POST names (its `user` field, an id; default: the one asking)."""
    value = request.POST.get("user")
    if not value:
        return request.user
    user = get_user_model().objects.filter(pk=int(value)).first() if value.isdigit() and len(value) < 19 else None
    if user is None:
        raise Http404(NO_SUCH_USER.format(value=value))
    return user


def _words(scope: str, user) -> str:
    if scope == _SWITCH.GLOBAL:
        return "every deployment"
    return "all your deployments" if user is None else f"every deployment of {user.get_username()}"


@login_required
def kill_switch_view(request):
    """GET: the latched switches you see, the switch of all your deployments and, for superusers, the
    global one. POST (scope=user|global): trip it, after the confirmation."""
    trip_forms = {_SWITCH.USER: TripForm(prefix="user"), _SWITCH.GLOBAL: TripForm(prefix="global")}
    if request.method == "POST":
        scope = request.POST.get("scope")
        if scope not in trip_forms:
            raise Http404(NO_SUCH_SWITCH.format(scope=scope))
        form = trip_forms[scope] = TripForm(request.POST, prefix=scope)
        if form.is_valid():
            user = request.user if scope == _SWITCH.USER else None
            try:
                emergency_stop(scope, form.cleaned_data["level"], actor=request.user, user=user,
                               reason=form.cleaned_data["reason"])
            except REFUSALS as error:
                messages.error(request, message_of(error))
            else:
                messages.warning(request, TRIPPED.format(level=form.cleaned_data["level"],
                                                         what=_words(scope, None)))
                return redirect("risk:kill_switch")
    switches = selectors.switches_visible(user=request.user)
    return render(request, "risk/kill_switch.html", {
        "switches": [{"switch": s, "may_lift": _may_lift(request.user, s)} for s in switches],
        "own": selectors.switch_latched(_SWITCH.USER, user=request.user),
        "global_switch": selectors.switch_latched(_SWITCH.GLOBAL),
        "forms": trip_forms,
    })


def _may_lift(user, switch: KillSwitch) -> bool:
    """Whether this page offers to lift `switch` (a deployment's is lifted on its page)."""
    if switch.scope == _SWITCH.GLOBAL:
        return user.is_superuser
    return switch.scope == _SWITCH.USER and may_act(user=user, owner_id=switch.user_id)


@login_required
@require_POST
def kill_switch_lift_view(request):
    """Lift the global switch or a user's (scope=global|user, user=<id>, default yours)."""
    scope = request.POST.get("scope")
    if scope not in (_SWITCH.USER, _SWITCH.GLOBAL):
        raise Http404(NO_SUCH_SWITCH.format(scope=scope))
    user = _switch_user(request) if scope == _SWITCH.USER else None
    try:
        kill_switch_lift(scope, actor=request.user, user=user)
    except REFUSALS as error:
        messages.error(request, message_of(error))
    else:
        what = _words(scope, None if user == request.user else user)
        messages.success(request, LIFTED.format(what=what))
    return redirect("risk:kill_switch")
