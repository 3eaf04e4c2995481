"""The deployment pages: the list, a deployment's own page (live through /ws/deployments/<id>/, see
trading.consumers and static/js/deployment_live.js), its pause, resume and stop, and the Deploy form of a
completed training. Thin: parse the request, call a selector or a service, render.

Someone else's deployment is a 404 (deployment_get's NotFound); staff see every deployment and act only
on their own (the services' PermissionDenied: the 403 page). Actions are POST-only; one the status does
not allow comes back as a message on the page, not an error page.

The page's actions are also served alone, as ?part=actions: the page fetches them when its stream says
the status moved, so the buttons always are the ones the server offers.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from common.access import may_act, require_actor
from common.errors import REFUSALS, NotFound, message_of
from common.ids import is_id
from sessions.selectors import SESSION_NOT_FOUND, session_get
from trading import selectors, services
from trading.feeds import EVENTS, FILLS, OPEN_STATUSES, ORDERS, position_rows
from trading.forms import DeployForm
from trading.models import Deployment, DeploymentStatus
from trading.risk_views import risk_panel
from trading.services.deployments import SESSION_NOT_YOURS
from trading.services.transitions import TRANSITIONS

PER_PAGE = 50
ROWS_SHOWN = 20  # recent fills and orders on a deployment's page
EVENTS_SHOWN = 50
ACTIONS_PART = "actions"

PAUSED = "Deployment #{pk} paused: it places no order from its next bar on."
RESUMED = "Deployment #{pk} resumed: it trades again from its next bar."
STOPPED = "Deployment #{pk} stopped for good."
CREATED = "Deployment #{pk} created: a trading process starts it shortly."
CREATED_LIVE = "LIVE deployment #{pk} created: it sends real orders once a trading process starts it."
NO_SUCH_SESSION = "no session {value!r}"

_S = DeploymentStatus


def _get_or_404(request, pk: int) -> Deployment:
    try:
        return selectors.deployment_get(user=request.user, pk=pk)
    except NotFound as error:
        raise Http404(str(error)) from None


def deployment_actions(deployment: Deployment, *, user) -> list[dict]:
    """The buttons offered: what the status machine allows from here and a person may ask, for those who
    may act. Pending waits for a trading process, so it can only be stopped."""
    if not may_act(user=user, owner_id=deployment.owner_id):
        return []
    moves = TRANSITIONS[deployment.status]
    actions = []
    if _S.PAUSED in moves:
        actions.append({"name": "pause", "label": "Pause", "css": ""})
    if _S.RUNNING in moves and deployment.status != _S.PENDING:
        actions.append({"name": "resume", "label": "Resume", "css": ""})
    if _S.STOPPED in moves:
        actions.append({"name": "stop", "label": "Stop", "css": "danger"})
    return actions


@login_required
def deployment_list_view(request):
    deployments = selectors.deployment_list(user=request.user)
    page = Paginator(deployments, PER_PAGE).get_page(request.GET.get("page"))
    live_running = sum(1 for d in page if d.is_live and d.status == _S.RUNNING)
    return render(request, "trading/list.html", {
        "page": page, "extra": "", "live_running": live_running,
        "show_owner": any(d.owner_id != request.user.pk for d in page),
    })


@login_required
def deployment_detail_view(request, pk: int):
    deployment = _get_or_404(request, pk)
    actions = deployment_actions(deployment, user=request.user)
    if request.GET.get("part") == ACTIONS_PART:
        return render(request, "trading/actions.html", {"deployment": deployment, "actions": actions})
    orders = ORDERS.newest_after(owner_pk=pk, after=0, limit=ROWS_SHOWN)
    open_orders = ORDERS.open_rows(owner_pk=pk)
    fills = FILLS.newest_after(owner_pk=pk, after=0, limit=ROWS_SHOWN)
    events = EVENTS.newest_after(owner_pk=pk, after=0, limit=EVENTS_SHOWN)
    risk = risk_panel(deployment, user=request.user)  # its decisions and kill switch (trading.risk_views)
    return render(request, "trading/detail.html", {
        "deployment": deployment,
        "actions": actions,
        "positions": position_rows(deployment_pk=pk),
        "open_orders": open_orders,
        "orders": orders[::-1],
        "fills": fills[::-1],
        "events": events[::-1],
        # Where the page's stream starts (trading.consumers): after what the page shows. Orders from
        # before the oldest open one, which may still change.
        "cursors": {
            "equity": 0,  # the chart is drawn from the stream, all of it
            "orders": (open_orders[0]["id"] - 1) if open_orders else (orders[-1]["id"] if orders else 0),
            "fills": fills[-1]["id"] if fills else 0,
            "events": events[-1]["id"] if events else 0,
            "decisions": risk["decisions_after"],
        },
        # What the page holds of the orders, to resume their stream and keep their table.
        "orders_known": sorted({o["id"]: o for o in orders + open_orders}.values(), key=lambda o: o["id"]),
        "open_statuses": OPEN_STATUSES,
        **risk,
    })


def _act(request, pk: int, service) -> Deployment | None:
    """Call `service` (deployment_pause, _resume or _stop); None when it refused, with the reason as a
    message. PermissionDenied (staff on someone else's) goes on to the 403 page."""
    deployment = _get_or_404(request, pk)
    try:
        return service(deployment=deployment, user=request.user)
    except REFUSALS as error:
        messages.error(request, message_of(error))
        return None


@login_required
@require_POST
def deployment_pause_view(request, pk: int):
    if _act(request, pk, services.deployment_pause):
        messages.success(request, PAUSED.format(pk=pk))
    return redirect("deployments:detail", pk=pk)


@login_required
@require_POST
def deployment_resume_view(request, pk: int):
    if _act(request, pk, services.deployment_resume):
        messages.success(request, RESUMED.format(pk=pk))
    return redirect("deployments:detail", pk=pk)


@login_required
@require_POST
def deployment_stop_view(request, pk: int):
    if _act(request, pk, services.deployment_stop):
        messages.success(request, STOPPED.format(pk=pk))
    return redirect("deployments:detail", pk=pk)


def _session_or_404(request, value):
    """The training session the form deploys (?session= or the form's), one the user may see."""
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise Http404(NO_SUCH_SESSION.format(value=value)) from None
    if not is_id(pk):
        raise Http404(NO_SUCH_SESSION.format(value=value))
    try:
        return session_get(user=request.user, pk=pk)
    except NotFound as error:
        raise Http404(str(error)) from None


@login_required
def deployment_create_view(request):
    """GET ?session=<id>: the Deploy form; POST: deploy, then the new deployment's page. A refusal
    shows the form again with the reason on the input it names."""
    data = request.POST if request.method == "POST" else None
    session = _session_or_404(request, request.POST.get("session") if data else request.GET.get("session"))
    # Staff see every session but deploy only their own: no form they could not send (403).
    require_actor(user=request.user, owner_id=session.strategy.owner_id,
                  not_found=SESSION_NOT_FOUND.format(pk=session.pk),
                  not_yours=SESSION_NOT_YOURS.format(pk=session.pk, owner=session.strategy.owner))
    form = DeployForm(data, user=request.user, initial={"session": session.pk})
    if data is not None and form.is_valid():
        try:
            deployment = services.deployment_create(session=session, user=request.user, **form.service_kwargs())
        except REFUSALS as error:
            form.add_service_error(error)
        else:
            messages.success(request, (CREATED_LIVE if deployment.is_live else CREATED).format(pk=deployment.pk))
            return redirect("deployments:detail", pk=deployment.pk)
    return render(request, "trading/new.html", {"form": form, "session": session})
