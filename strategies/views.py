"""The strategy pages: list, create, edit, delete. Thin: parse the request, call a selector or a
service, render. A strategy's own page shows its sessions and its Train button, so it lives with
the sessions (sessions.strategy_views), under the same /strategies/ URLs.

Someone else's strategy is a 404 (strategy_get's NotFound), so ids do not reveal what exists.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from common.access import sees_all_strategies
from common.errors import REFUSALS, NotFound, message_of
from strategies.forms import RELOAD, strategy_form
from strategies.selectors import strategy_get, strategy_list
from strategies.services import strategy_create, strategy_delete, strategy_update

PER_PAGE = 50
SAVED = "Strategy “{name}” saved."
DELETED = "Strategy “{name}” deleted with its sessions."


def strategy_or_404(request, pk: int):
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
            except REFUSALS as error:
                form.add_service_error(error)
            else:
                messages.success(request, SAVED.format(name=strategy.name))
                return redirect("strategies:detail", pk=strategy.pk)
        else:
            form.check_config()
    else:
        form = strategy_form(source=request.POST if request.method == "POST" else request.GET)
    return render(request, "strategies/form.html", {"form": form, "reload": RELOAD})


@login_required
def strategy_edit_view(request, pk: int):
    strategy = strategy_or_404(request, pk)
    if request.method == "POST" and RELOAD not in request.POST:
        form = strategy_form(data=request.POST, strategy=strategy)
        if form.is_valid():
            # Every parameter is on the page, so the preset has already done its work: it chose the
            # values the form showed.
            try:
                strategy = strategy_update(strategy=strategy, user=request.user, **form.service_kwargs())
            except REFUSALS as error:
                form.add_service_error(error)
                # strategy_update assigns before it validates; show the stored strategy, not the refused input.
                strategy.refresh_from_db()
            else:
                messages.success(request, SAVED.format(name=strategy.name))
                return redirect("strategies:detail", pk=strategy.pk)
        else:
            form.check_config()
    else:
        form = strategy_form(source=request.POST if request.method == "POST" else request.GET, strategy=strategy)
    return render(request, "strategies/form.html", {"form": form, "strategy": strategy, "reload": RELOAD})


@login_required
@require_POST
def strategy_delete_view(request, pk: int):
    strategy = strategy_or_404(request, pk)
    try:
        strategy_delete(strategy=strategy, user=request.user)
    except REFUSALS as error:  # a session of it still runs or waits (409 in the API)
        messages.error(request, message_of(error))
        return redirect("strategies:detail", pk=strategy.pk)
    messages.success(request, DELETED.format(name=strategy.name))
    return redirect("strategies:list")

