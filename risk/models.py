"""The risk controller's state: limits (system-wide ceilings, per user, per strategy, per deployment), the
latched kill switches, and every decision the checks made.

risk sits below trading (the trading loop calls risk's checks), so deployments are referred to by name
("trading.Deployment") and never imported here.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q

from risk.limits import Limits
from strategies.models import Strategy


class Scope(models.TextChoices):
    SYSTEM = "system", "System-wide"
    USER = "user", "User"
    STRATEGY = "strategy", "Strategy"
    DEPLOYMENT = "deployment", "Deployment"


class RiskLimit(models.Model):
    """One scope's limits (risk.limits.Limits as JSON). The tightest of a deployment's user, strategy and
    own limits applies; the system-wide row is a ceiling nobody's limits may exceed."""

    Scope = Scope

    scope = models.CharField(max_length=16, choices=Scope.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="risk_limits")
    strategy = models.ForeignKey(Strategy, null=True, blank=True, on_delete=models.CASCADE, related_name="risk_limits")
    deployment = models.ForeignKey("trading.Deployment", null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="risk_limits")
    limits = models.JSONField(default=dict, help_text="risk.limits.Limits.as_dict()")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=Scope.values), name="risk_limit_scope_valid"),
            models.UniqueConstraint(fields=["scope"], condition=Q(scope="system"), name="risk_limit_one_system"),
            models.UniqueConstraint(fields=["user"], condition=Q(scope="user"), name="risk_limit_one_per_user"),
            models.UniqueConstraint(fields=["strategy"], condition=Q(scope="strategy"),
                                    name="risk_limit_one_per_strategy"),
            models.UniqueConstraint(fields=["deployment"], condition=Q(scope="deployment"),
                                    name="risk_limit_one_per_deployment"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} limits #{self.pk}"

    def as_limits(self) -> Limits:
        return Limits.from_dict(self.limits)


class LimitChange(models.Model):
    """Every change of a limits row: who, when, from what to what."""

    limit = models.ForeignKey(RiskLimit, on_delete=models.CASCADE, related_name="changes")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class KillLevelName(models.TextChoices):
    PAUSE = "pause", "Pause: no new orders"
    HALT = "halt", "Halt: open orders cancelled, only reducing orders"
    FLATTEN = "flatten", "Flatten: cancel everything, close every position"


class KillSwitch(models.Model):
    """A tripped kill switch: global, one user's deployments, or one deployment's. It stays latched until
    a person lifts it (lifted_at); tripping again at a higher level raises it, never lowers it."""

    class SwitchScope(models.TextChoices):
        GLOBAL = "global", "Global"
        USER = "user", "User"
        DEPLOYMENT = "deployment", "Deployment"

    Level = KillLevelName

    scope = models.CharField(max_length=16, choices=SwitchScope.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="kill_switches")
    deployment = models.ForeignKey("trading.Deployment", null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="kill_switches")
    level = models.CharField(max_length=8, choices=KillLevelName.choices)
    reason = models.TextField()
    automatic = models.BooleanField(default=False, help_text="Tripped by a loss limit, not by a person")
    tripped_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    tripped_at = models.DateTimeField(auto_now_add=True)
    lifted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(level__in=KillLevelName.values), name="kill_switch_level_valid"),
            # One latched switch per scope target at a time: a second trip raises the one in place.
            models.UniqueConstraint(fields=["scope"], condition=Q(scope="global", lifted_at__isnull=True),
                                    name="kill_switch_one_global"),
            models.UniqueConstraint(fields=["user"], condition=Q(scope="user", lifted_at__isnull=True),
                                    name="kill_switch_one_per_user"),
            models.UniqueConstraint(fields=["deployment"], condition=Q(scope="deployment", lifted_at__isnull=True),
                                    name="kill_switch_one_per_deployment"),
        ]
        indexes = [models.Index(fields=["lifted_at"], name="kill_switch_latched_idx")]

    def __str__(self) -> str:
        return f"{self.level} ({self.scope})"

    @property
    def latched(self) -> bool:
        return self.lifted_at is None


class RiskDecision(models.Model):
    """What the checks said about one order of a deployment, with the limit's numbers."""

    deployment = models.ForeignKey("trading.Deployment", on_delete=models.CASCADE, related_name="risk_decisions")
    client_order_id = models.CharField(max_length=64)
    symbol = models.CharField(max_length=50)
    side = models.CharField(max_length=4)
    quantity = models.FloatField()
    approved = models.BooleanField()
    code = models.CharField(max_length=50, blank=True)
    message = models.TextField(blank=True)
    values = models.JSONField(default=dict, blank=True)
    bar_index = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["deployment", "id"], name="risk_decision_deployment_idx")]

    def __str__(self) -> str:
        return f"{'approved' if self.approved else self.code} {self.side} {self.quantity:g} {self.symbol}"
