"""The strategy pages. Thin: parse the request, call a selector or a service, render.

Someone else's strategy is a 404 (strategy_get's NotFound), so ids do not reveal what exists.
"""
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from pydantic import ValidationError as ConfigError

from sessions import services as session_services
from sessions.selectors import summarised
from sessions.services import IllegalTransition
from strategies.forms import RELOAD, strategy_form
from strategies.selectors import sees_all_strategies, strategy_get, strategy_list
from strategies.services import strategy_create, strategy_delete, strategy_update
from trademaster_web.errors import Conflict, NotFound

PER_PAGE = 50
SESSIONS_SHOWN = 50
SAVED = "Strategy “{name}” saved."
DELETED = "Strategy “{name}” deleted with its sessions."
TRAINING_SUBMITTED = "Training session #{pk} submitted."

# What the services raise for input that is well formed but refused; shown on the form.
_REFUSED = (ConfigError, Conflict, DjangoValidationError)


def _get_or_404(request, pk: int):
    try:
        return strategy_get(user=request.user, pk=pk)
    except NotFound as error:
        raise Http404(str(error)) from None


@login_required
def strategy_list_view(request):
    page = Paginator(strategy_list(user=request.user), PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "strategies/list.html", {"page": page, "show_owner": sees_all_strategies(request.user)})


@login_required
def strategy_create_view(request):
    if request.method == "POST" and RELOAD not in request.POST:
        form = strategy_form(data=request.POST)
        if form.is_valid():
            try:
                strategy = strategy_create(owner=request.user, preset=form.cleaned_data["preset"] or "default",
                                           **form.service_kwargs())
            except _REFUSED as error:
                form.add_service_error(error)
            else:
                messages.success(request, SAVED.format(name=strategy.name))
                return redirect("strategies:detail", pk=strategy.pk)
    else:
        form = strategy_form(source=request.POST if request.method == "POST" else request.GET)
    return render(request, "strategies/form.html", {"form": form, "reload": RELOAD})


@login_required
def strategy_edit_view(request, pk: int):
    strategy = _get_or_404(request, pk)
    if request.method == "POST" and RELOAD not in request.POST:
        form = strategy_form(data=request.POST, strategy=strategy)
        if form.is_valid():
            # Every parameter is on the page, so the preset has already done its work: it chose the
            # values the form showed.
            try:
                strategy = strategy_update(strategy=strategy, user=request.user, **form.service_kwargs())
            except _REFUSED as error:
                form.add_service_error(error)
                # strategy_update assigns before it validates; show the stored strategy, not the refused input.
                strategy.refresh_from_db()
            else:
                messages.success(request, SAVED.format(name=strategy.name))
                return redirect("strategies:detail", pk=strategy.pk)
    else:
        form = strategy_form(source=request.POST if request.method == "POST" else request.GET, strategy=strategy)
    return render(request, "strategies/form.html", {"form": form, "strategy": strategy, "reload": RELOAD})


@login_required
def strategy_detail_view(request, pk: int):
    strategy = _get_or_404(request, pk)
    return render(request, "strategies/detail.html", {
        "strategy": strategy,
        "sessions": summarised(strategy.sessions.all())[:SESSIONS_SHOWN],
        # Sorted: PostgreSQL's jsonb does not keep the order the keys were written in, SQLite does.
        "config_json": json.dumps(strategy.config, indent=2, sort_keys=True),
    })


@login_required
@require_POST
def strategy_train_view(request, pk: int):
    strategy = _get_or_404(request, pk)
    try:
        session = session_services.session_submit(strategy=strategy, user=request.user)
    except (IllegalTransition, Conflict, DjangoValidationError) as error:
        messages.error(request, _message(error))
        return redirect("strategies:detail", pk=strategy.pk)
    messages.success(request, TRAINING_SUBMITTED.format(pk=session.pk))
    return redirect("sessions:detail", pk=session.pk)


@login_required
@require_POST
def strategy_delete_view(request, pk: int):
    strategy = _get_or_404(request, pk)
    strategy_delete(strategy=strategy, user=request.user)
    messages.success(request, DELETED.format(name=strategy.name))
    return redirect("strategies:list")


def _message(error: Exception) -> str:
    if isinstance(error, DjangoValidationError):
        return " ".join(error.messages)
    return str(error)
