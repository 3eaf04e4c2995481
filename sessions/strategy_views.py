"""A strategy's own page, with its sessions, and its Train action: they read and write sessions, so
they live here, above the strategies app, which never imports this one. The URLs stay under
/strategies/ (trademaster_web.urls mounts them beside the strategies app's own, in its namespace).
"""
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from common.errors import REFUSALS, message_of
from sessions import services
from sessions.selectors import summarised
from strategies.config import config_public
from strategies.views import strategy_or_404

SESSIONS_SHOWN = 50
TRAINING_SUBMITTED = "Training session #{pk} submitted."


@login_required
def strategy_detail_view(request, pk: int):
    strategy = strategy_or_404(request, pk)
    return render(request, "strategies/detail.html", {
        "strategy": strategy,
        "sessions": summarised(strategy.sessions.all())[:SESSIONS_SHOWN],
        # Sorted: PostgreSQL's jsonb does not keep the order the keys were written in, SQLite does.
        "config_json": json.dumps(config_public(strategy.config, dataset_name=strategy.dataset.name), indent=2,
                                  sort_keys=True),
    })


@login_required
@require_POST
def strategy_train_view(request, pk: int):
    strategy = strategy_or_404(request, pk)
    try:
        session = services.session_submit(strategy=strategy, user=request.user)
    except REFUSALS as error:
        messages.error(request, message_of(error))
        return redirect("strategies:detail", pk=strategy.pk)
    messages.success(request, TRAINING_SUBMITTED.format(pk=session.pk))
    return redirect("sessions:detail", pk=session.pk)
