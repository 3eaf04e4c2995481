"""The trading admin. Deployments move only through the services (pause, resume, stop), as from the API
and the pages; their record (orders, fills, equity, events) is the trading process's, shown and never
edited. Exchange keys go in through exchange_account_create and are never shown: no sealed field is on
any form or page."""
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters

from common.access import may_act
from common.errors import REFUSALS, message_of, problems_of
from trading.models import (
    Deployment,
    DeploymentEvent,
    EquityPoint,
    ExchangeAccount,
    Fill,
    Order,
    Position,
    TradingWorker,
)
from trading.schemas import EXCHANGES
from trading.services import deployment_pause, deployment_resume, deployment_stop, exchange_account_create

ACTION_DONE = "{action}: {ids}"
ACTION_REFUSED = "deployment {pk}: {error}"
SEALED_FIELDS = ("api_key_sealed", "secret_sealed")
LIVE_COLOUR = "#ba2121"  # the admin's own red, as its delete buttons and errors


def _changelist_of(model, deployment: Deployment, label: str) -> str:
    # A link to the filtered changelist rather than an inline: a long deployment has thousands of rows.
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return format_html('<a href="{}?deployment__id__exact={}">{}</a>', url, deployment.pk, label)


class ViewOnlyAdmin(admin.ModelAdmin):
    """What the trading processes write, shown and never edited by a person."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class RecordAdmin(ViewOnlyAdmin):
    """A deployment's record: written by the trading process, bar by bar."""

    raw_id_fields = ("deployment",)
    list_select_related = ("deployment",)
    # These tables grow by a row or more per bar: skip the unfiltered COUNT(*).
    show_full_result_count = False


class PositionInline(admin.TabularInline):
    model = Position
    fields = ("symbol", "quantity", "last_price", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "mode_marker", "status", "equity", "pnl", "last_bar", "heartbeat_at", "owner")
    list_filter = ("status", "mode", "feed")
    search_fields = ("name", "owner__username", "strategy__name")
    list_select_related = ("owner",)
    inlines = (PositionInline,)
    actions = ("pause_deployments", "resume_deployments", "stop_deployments")
    # Only the name is a person's to change: status moves through the actions (the services), what
    # trades is fixed at creation, and the rest is the trading process's record and lease.
    readonly_fields = (
        "owner", "strategy", "session", "mode", "feed", "account", "status", "error",
        "config", "dataset_name", "symbols", "checkpoint_path", "checkpoint_sha256", "replay_start", "replay_stop",
        "bars_per_second", "timeframe", "fill_model", "fee_rate", "slippage_bps", "volume_cap", "initial_cash",
        "last_bar", "last_bar_time", "bars_done", "cash", "equity", "peak_equity", "day_start_equity", "day",
        "benchmark_prices", "broker_state",
        "lease_owner", "lease_host", "lease_pid", "lease_expires_at", "heartbeat_at", "reconciled_at",
        "created_at", "started_at", "stopped_at", "updated_at",
        "orders_link", "fills_link", "equity_link", "events_link",
    )
    fieldsets = (
        (None, {"fields": ("name", "owner", "strategy", "session", "mode", "feed", "account", "status", "error")}),
        ("What trades", {"fields": (
            "dataset_name", "symbols", "checkpoint_path", "checkpoint_sha256", "replay_start", "replay_stop",
            "bars_per_second", "timeframe", "fill_model", "fee_rate", "slippage_bps", "volume_cap", "initial_cash",
            "config",
        )}),
        ("Where it stands", {"fields": (
            "last_bar", "last_bar_time", "bars_done", "cash", "equity", "peak_equity", "day_start_equity", "day",
            "benchmark_prices", "broker_state", "orders_link", "fills_link", "equity_link", "events_link",
        )}),
        ("Lease", {"fields": ("lease_owner", "lease_host", "lease_pid", "lease_expires_at", "heartbeat_at",
                              "reconciled_at", "created_at", "started_at", "stopped_at", "updated_at")}),
    )

    def get_fieldsets(self, request, obj=None):
        # A deployment's config is its owner's work (trading.selectors): other staff see none of it.
        if obj is None or may_act(user=request.user, owner_id=obj.owner_id):
            return self.fieldsets
        return [(name, {**options, "fields": tuple(f for f in options["fields"] if f != "config")})
                for name, options in self.fieldsets]

    def has_add_permission(self, request) -> bool:
        # A deployment is made from a completed training (deployment_create): the API, the pages, manage.py.
        return False

    @admin.display(description="mode", ordering="mode")
    def mode_marker(self, deployment: Deployment) -> str:
        if deployment.is_live:
            return format_html('<strong style="color: {};">LIVE</strong>', LIVE_COLOUR)
        return deployment.get_mode_display()

    @admin.display(description="pnl")
    def pnl(self, deployment: Deployment) -> float | None:
        return deployment.pnl

    @admin.action(description="Pause the selected deployments (no order from their next bar on)")
    def pause_deployments(self, request, queryset):
        self._each(request, queryset, "Paused", lambda d: deployment_pause(deployment=d, user=request.user))

    @admin.action(description="Resume the selected deployments")
    def resume_deployments(self, request, queryset):
        self._each(request, queryset, "Resumed", lambda d: deployment_resume(deployment=d, user=request.user))

    @admin.action(description="Stop the selected deployments, for good")
    def stop_deployments(self, request, queryset):
        self._each(request, queryset, "Stopped", lambda d: deployment_stop(deployment=d, user=request.user))

    def _each(self, request, queryset, done: str, action) -> None:
        # One service call per deployment, as the API makes it; a refusal (an illegal move, someone
        # else's for a staff member) is reported and does not stop the others.
        moved = []
        for deployment in queryset.select_related("owner").order_by("pk"):
            try:
                action(deployment)
            except (*REFUSALS, PermissionDenied) as error:
                self.message_user(request, ACTION_REFUSED.format(pk=deployment.pk, error=message_of(error)),
                                  messages.WARNING)
            else:
                moved.append(str(deployment.pk))
        if moved:
            self.message_user(request, ACTION_DONE.format(action=done, ids=", ".join(moved)), messages.SUCCESS)

    @admin.display(description="orders")
    def orders_link(self, deployment: Deployment) -> str:
        return _changelist_of(Order, deployment, "orders")

    @admin.display(description="fills")
    def fills_link(self, deployment: Deployment) -> str:
        return _changelist_of(Fill, deployment, "fills")

    @admin.display(description="equity")
    def equity_link(self, deployment: Deployment) -> str:
        return _changelist_of(EquityPoint, deployment, "equity points")

    @admin.display(description="events")
    def events_link(self, deployment: Deployment) -> str:
        return _changelist_of(DeploymentEvent, deployment, "events")


class ExchangeAccountAddForm(forms.ModelForm):
    """A new account: the keys in password inputs (never rendered back), sealed by
    exchange_account_create, whose refusals (a name taken, no TRADEMASTER_EXCHANGE_KEY) land on the form."""

    exchange = forms.ChoiceField(choices=[(name, name) for name in EXCHANGES], help_text="ccxt exchange id")
    base_url = forms.URLField(required=False, max_length=300, assume_scheme="https",
                              help_text=ExchangeAccount._meta.get_field("base_url").help_text)
    api_key = forms.CharField(widget=forms.PasswordInput(render_value=False), strip=False, max_length=1000)
    secret = forms.CharField(widget=forms.PasswordInput(render_value=False), strip=False, max_length=1000)

    class Meta:
        model = ExchangeAccount
        fields = ("owner", "name", "exchange", "base_url", "quote")

    def _post_clean(self):
        # The service validates and saves (it alone seals keys); the model's own checks run there.
        if self.errors:
            return
        data = self.cleaned_data
        try:
            self.instance = exchange_account_create(
                owner=data["owner"], name=data["name"], exchange=data["exchange"], api_key=data["api_key"],
                secret=data["secret"], base_url=data["base_url"], quote=data["quote"])
        except REFUSALS as error:
            for problem in problems_of(error):
                field = problem.loc[0] if problem.loc and problem.loc[0] in self.fields else None
                self.add_error(field, problem.message)


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "exchange", "quote", "base_url", "key_hint", "created_at")
    list_filter = ("exchange",)
    search_fields = ("name", "owner__username", "exchange")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    # The keys are sealed and stay so: never a field here, read-only or not.
    exclude = SEALED_FIELDS
    readonly_fields = ("key_hint", "created_at")
    add_form = ExchangeAccountAddForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("owner", "name", "exchange", "api_key", "secret", "base_url", "quote")
        return ("owner", "name", "exchange", "base_url", "quote", "key_hint", "created_at")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_changeform_initial_data(self, request):
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    def has_change_permission(self, request, obj=None) -> bool:
        # Only the service writes accounts; to change one, delete it and add it again.
        return False

    @method_decorator(sensitive_post_parameters("api_key", "secret"))
    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change) -> None:
        # The form's exchange_account_create has saved it already.
        pass


@admin.register(Order)
class OrderAdmin(RecordAdmin):
    list_display = ("id", "deployment", "bar_time", "symbol", "side", "quantity", "status", "filled_quantity",
                    "average_price", "fees", "refused_by_risk")
    list_filter = ("status", "side", "refused_by_risk")
    search_fields = ("symbol", "client_order_id", "broker_order_id", "deployment__name")
    ordering = ("-id",)


@admin.register(Fill)
class FillAdmin(RecordAdmin):
    list_display = ("id", "deployment", "order", "time", "symbol", "side", "quantity", "price", "fee")
    list_filter = ("side",)
    search_fields = ("symbol", "fill_id", "deployment__name")
    raw_id_fields = ("deployment", "order")
    ordering = ("-id",)


@admin.register(EquityPoint)
class EquityPointAdmin(RecordAdmin):
    list_display = ("deployment", "bar_index", "time", "equity", "cash", "benchmark")
    ordering = ("-id",)


@admin.register(Position)
class PositionAdmin(RecordAdmin):
    list_display = ("deployment", "symbol", "quantity", "last_price", "updated_at")
    search_fields = ("symbol", "deployment__name")
    ordering = ("deployment", "symbol")


@admin.register(TradingWorker)
class TradingWorkerAdmin(ViewOnlyAdmin):
    list_display = ("owner", "host", "pid", "started_at", "heartbeat_at")
    search_fields = ("owner", "host")
    ordering = ("started_at",)


@admin.register(DeploymentEvent)
class DeploymentEventAdmin(RecordAdmin):
    list_display = ("created_at", "deployment", "severity", "message")
    list_filter = ("severity",)
    search_fields = ("message", "deployment__name")
    ordering = ("-id",)
