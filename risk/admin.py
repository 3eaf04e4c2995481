"""The risk admin. Limits and kill switches change only through risk.services, as from the API and the
pages: a limits row is saved by limits_set (recording the change), a switch is tripped by emergency_stop
and lifted by kill_switch_lift (actions), never edited; decisions and changes are the record, shown and
never edited.

A form whose save is a service call asks the service while it validates, in a savepoint rolled back
(ServiceForm): its refusals land on the form as errors, and save_model then makes the same call for
real. The services lock what they change, so the second call meets what the first one did.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction

from common.errors import REFUSALS, message_of, problems_of
from risk.limits import Limits
from risk.models import KillSwitch, LimitChange, RiskDecision, RiskLimit
from risk.services import emergency_stop, kill_switch_lift, limits_set

ACTION_DONE = "{action}: {ids}"
ACTION_REFUSED = "kill switch {pk}: {error}"
LIMIT_NAMES = tuple(Limits.__dataclass_fields__)
NOT_AN_OBJECT = 'limits must be a JSON object, {"max_order_notional": 50000, ...}'


class _DryRun(Exception):
    """Rolls back a service call made only to hear whether it refuses."""


class ServiceForm(forms.ModelForm):
    """A form saved by a service call (`call`), made by `actor` (the admin sets it)."""

    actor = None
    # Where a refusal naming no field of the form goes: this field ("limits"), else the whole form.
    catch_all: str | None = None

    def call(self):
        raise NotImplementedError

    def _post_clean(self):
        # Not the model's own validation: the service validates, and replaces a row the target has.
        if self.errors:
            return
        try:
            with transaction.atomic():
                self.call()
                raise _DryRun
        except _DryRun:
            pass
        except (*REFUSALS, PermissionDenied) as error:
            for problem in problems_of(error):
                self._add_problem(problem)

    def _add_problem(self, problem) -> None:
        name = problem.loc[0] if problem.loc else None
        if name in self.fields:
            self.add_error(name, problem.message)
        elif name is not None and self.catch_all in self.fields:
            self.add_error(self.catch_all, f"{name}: {problem.message}")
        else:
            self.add_error(None, problem.message)


def _saved_as(obj, row) -> None:
    """Make the admin's unsaved `obj` the row the service saved (the admin logs and links to it)."""
    for field in type(row)._meta.concrete_fields:
        setattr(obj, field.attname, getattr(row, field.attname))
    obj._state.adding, obj._state.db = False, row._state.db


class ServiceAdmin(admin.ModelAdmin):
    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def save_model(self, request, obj, form, change) -> None:
        _saved_as(obj, form.call())

    def has_delete_permission(self, request, obj=None) -> bool:
        # A deletion would change what applies without a recorded change (limits) or a lift (switches).
        return False


class RiskLimitForm(ServiceForm):
    catch_all = "limits"

    class Meta:
        model = RiskLimit
        fields = ("scope", "user", "strategy", "deployment", "limits")
        help_texts = {"limits": "A JSON object of risk.limits.Limits' fields, each optional: "
                                + ", ".join(LIMIT_NAMES) + ". It replaces the scope's limits; {} clears them."}

    def clean_limits(self):
        limits = self.cleaned_data["limits"]
        if not isinstance(limits, dict):
            raise forms.ValidationError(NOT_AN_OBJECT)
        return limits

    def call(self) -> RiskLimit:
        row = self.instance
        values = {name: self.cleaned_data.get(name, getattr(row, name)) for name in
                  ("scope", "user", "strategy", "deployment")}
        return limits_set(scope=values["scope"], limits=self.cleaned_data["limits"], actor=self.actor,
                          user=values["user"], strategy=values["strategy"], deployment=values["deployment"])


class LimitChangeInline(admin.TabularInline):
    model = LimitChange
    fields = ("changed_at", "changed_by", "before", "after")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RiskLimit)
class RiskLimitAdmin(ServiceAdmin):
    form = RiskLimitForm
    list_display = ("id", "scope", "user", "strategy", "deployment", "updated_by", "updated_at")
    list_filter = ("scope",)
    list_select_related = ("user", "strategy", "deployment", "updated_by")
    raw_id_fields = ("user", "strategy", "deployment")
    inlines = (LimitChangeInline,)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()  # a new row has no history

    def get_readonly_fields(self, request, obj=None):
        # A row's scope and target are fixed: only its limits change.
        target = ("scope", "user", "strategy", "deployment") if obj is not None else ()
        return (*target, "updated_by", "updated_at")


class KillSwitchTripForm(ServiceForm):
    """Trip a switch (emergency_stop): the scope, its target and the level."""

    reason = forms.CharField(required=False, widget=forms.Textarea, help_text='Empty: "tripped at <level>".')

    class Meta:
        model = KillSwitch
        fields = ("scope", "user", "deployment", "level", "reason")

    def call(self) -> KillSwitch:
        data = self.cleaned_data
        return emergency_stop(data["scope"], data["level"], actor=self.actor, user=data.get("user"),
                              deployment=data.get("deployment"), reason=data.get("reason", ""))


@admin.register(KillSwitch)
class KillSwitchAdmin(ServiceAdmin):
    form = KillSwitchTripForm
    list_display = ("id", "scope", "level", "user", "deployment", "latched_marker", "automatic", "tripped_by",
                    "tripped_at", "lifted_by", "lifted_at", "reason")
    list_filter = ("scope", "level", "automatic", ("lifted_at", admin.EmptyFieldListFilter))
    list_select_related = ("user", "deployment", "tripped_by", "lifted_by")
    raw_id_fields = ("user", "deployment")
    actions = ("lift_switches", "trip_pause", "trip_halt", "trip_flatten")

    def has_change_permission(self, request, obj=None) -> bool:
        # No level is edited: a switch is raised by tripping it again and ended by lifting it.
        return False

    @admin.display(description="latched", boolean=True)
    def latched_marker(self, switch: KillSwitch) -> bool:
        return switch.latched

    @admin.action(description="Lift the selected switches (their deployments may trade again)")
    def lift_switches(self, request, queryset):
        self._each(request, queryset.filter(lifted_at__isnull=True), "Lifted",
                   lambda s: kill_switch_lift(s.scope, actor=request.user, user=s.user, deployment=s.deployment))

    @admin.action(description="Trip the selected switches' targets at PAUSE (never lowers one)")
    def trip_pause(self, request, queryset):
        self._trip(request, queryset, "pause")

    @admin.action(description="Trip the selected switches' targets at HALT (never lowers one)")
    def trip_halt(self, request, queryset):
        self._trip(request, queryset, "halt")

    @admin.action(description="Trip the selected switches' targets at FLATTEN")
    def trip_flatten(self, request, queryset):
        self._trip(request, queryset, "flatten")

    def _trip(self, request, queryset, level: str) -> None:
        self._each(request, queryset, f"Tripped at {level}",
                   lambda s: emergency_stop(s.scope, level, actor=request.user, user=s.user, deployment=s.deployment,
                                            reason=f"tripped at {level} from the admin"))

    def _each(self, request, queryset, done: str, action) -> None:
        # One service call per switch, as the API makes it; a refusal is reported and does not stop the others.
        moved = []
        for switch in queryset.select_related("user", "deployment").order_by("pk"):
            try:
                action(switch)
            except (*REFUSALS, PermissionDenied) as error:
                self.message_user(request, ACTION_REFUSED.format(pk=switch.pk, error=message_of(error)),
                                  messages.WARNING)
            else:
                moved.append(str(switch.pk))
        if moved:
            self.message_user(request, ACTION_DONE.format(action=done, ids=", ".join(moved)), messages.SUCCESS)


class ViewOnlyAdmin(admin.ModelAdmin):
    """The record the trading process and the services write, shown and never edited."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RiskDecision)
class RiskDecisionAdmin(ViewOnlyAdmin):
    list_display = ("id", "deployment", "bar_index", "side", "quantity", "symbol", "approved", "code", "message")
    list_filter = ("approved", "code")
    search_fields = ("symbol", "client_order_id", "code", "deployment__name")
    raw_id_fields = ("deployment",)
    list_select_related = ("deployment",)
    ordering = ("-id",)
    # A row per order: skip the unfiltered COUNT(*).
    show_full_result_count = False


@admin.register(LimitChange)
class LimitChangeAdmin(ViewOnlyAdmin):
    list_display = ("id", "limit", "changed_by", "changed_at")
    list_filter = ("limit__scope",)
    list_select_related = ("limit", "changed_by")
    ordering = ("-id",)
