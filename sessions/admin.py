from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.html import format_html

from common.errors import REFUSALS, message_of
from sessions.models import Alert, PerformanceMetric, ResourceUsage, StrategySession
from sessions.services import session_requeue, session_stop

REQUEUED_BY = "requeued by {user} from the admin"
ACTION_DONE = "{action}: {ids}"
ACTION_REFUSED = "session {pk}: {error}"


def _changelist_of(model, session: StrategySession, label: str) -> str:
    # A link to the filtered changelist rather than an inline: a long training has thousands of rows.
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return format_html('<a href="{}?session__id__exact={}">{}</a>', url, session.pk, label)


@admin.register(StrategySession)
class StrategySessionAdmin(admin.ModelAdmin):
    list_display = (
        "id", "strategy", "session_type", "status", "progress", "attempt", "device", "created_at",
        "metrics_link", "resource_usage_link",
    )
    list_filter = ("status", "session_type", "device")
    search_fields = ("strategy__name", "strategy__owner__username", "task_id")
    list_select_related = ("strategy",)
    raw_id_fields = ("strategy", "source")
    # status and its timestamps move only through session_transition.
    readonly_fields = (
        "status", "started_at", "completed_at", "heartbeat_at", "created_at", "updated_at",
        "metrics_link", "resource_usage_link",
    )
    actions = ("stop_sessions", "requeue_sessions")

    @admin.action(description="Stop the selected sessions (running ones at the end of their epoch)")
    def stop_sessions(self, request, queryset):
        self._each(request, queryset, "Stopped or asked to stop",
                   lambda session: session_stop(session=session, user=request.user))

    @admin.action(description="Requeue the selected sessions (they resume from their last checkpoint)")
    def requeue_sessions(self, request, queryset):
        error = REQUEUED_BY.format(user=request.user.get_username())
        self._each(request, queryset, "Requeued", lambda session: session_requeue(session=session, error=error))

    def _each(self, request, queryset, done: str, action) -> None:
        # One service call per session, as the API and the pages make it; a refusal (a final session,
        # someone else's for a staff member) is reported and does not stop the others.
        moved = []
        for session in queryset.select_related("strategy__owner").order_by("pk"):
            try:
                action(session)
            except (*REFUSALS, PermissionDenied) as error:
                self.message_user(request, ACTION_REFUSED.format(pk=session.pk, error=message_of(error)),
                                  messages.WARNING)
            else:
                moved.append(str(session.pk))
        if moved:
            self.message_user(request, ACTION_DONE.format(action=done, ids=", ".join(moved)), messages.SUCCESS)

    @admin.display(description="progress")
    def progress(self, session: StrategySession) -> str:
        return f"{session.progress_epoch}/{session.progress_total or '?'}"

    @admin.display(description="metrics")
    def metrics_link(self, session: StrategySession) -> str:
        return _changelist_of(PerformanceMetric, session, "metrics")

    @admin.display(description="resource usage")
    def resource_usage_link(self, session: StrategySession) -> str:
        return _changelist_of(ResourceUsage, session, "resource usage")


@admin.register(PerformanceMetric)
class PerformanceMetricAdmin(admin.ModelAdmin):
    list_display = ("session", "metric_type", "epoch", "value", "timestamp")
    list_filter = ("metric_type",)
    search_fields = ("metric_type", "session__strategy__name")
    list_select_related = ("session__strategy",)
    raw_id_fields = ("session",)
    ordering = ("-timestamp",)
    # These tables grow by thousands of rows per training: skip the unfiltered COUNT(*).
    show_full_result_count = False


@admin.register(ResourceUsage)
class ResourceUsageAdmin(admin.ModelAdmin):
    list_display = ("session", "recorded_at", "cpu_percent", "memory_mb", "gpu_percent", "gpu_memory_mb")
    list_filter = (("gpu_percent", admin.EmptyFieldListFilter),)
    search_fields = ("session__strategy__name",)
    list_select_related = ("session__strategy",)
    raw_id_fields = ("session",)
    ordering = ("-recorded_at",)
    show_full_result_count = False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("created_at", "session", "severity", "kind", "epoch", "value", "message", "acknowledged_at")
    list_filter = ("severity", "kind", ("acknowledged_at", admin.EmptyFieldListFilter))
    search_fields = ("message", "session__strategy__name", "session__strategy__owner__username")
    list_select_related = ("session__strategy",)
    raw_id_fields = ("session",)
    ordering = ("-created_at", "-id")
    # sessions.alerts records them from what the worker wrote; only the acknowledgement is a person's.
    readonly_fields = ("session", "kind", "severity", "message", "epoch", "value", "created_at")

    def has_add_permission(self, request) -> bool:
        return False
