from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from strategies.models import Strategy

EPOCH_BEYOND_TOTAL = "progress_epoch must not exceed progress_total"


class SessionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class StrategySession(models.Model):
    """One run of a strategy: a training, a backtest, or a paper/live trading session."""

    class SessionType(models.TextChoices):
        TRAINING = "training", "Training"
        BACKTEST = "backtest", "Backtest"
        PAPER = "paper", "Paper trading"
        LIVE = "live", "Live trading"

    Status = SessionStatus

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="sessions")
    session_type = models.CharField(max_length=16, choices=SessionType.choices)
    # Only sessions.services.session_transition assigns status: it holds the table of legal moves and
    # refuses a move another process made first. Nothing else sets it (editable=False keeps it out of
    # forms and the admin).
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, editable=False)
    config = models.JSONField(default=dict, help_text="Snapshot of the strategy config this session runs")
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Backtest sessions: the training session whose best checkpoint they run (copied to
    # checkpoint_path at submit, so the backtest still runs if the training's row is deleted).
    source = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="backtests",
        help_text="The training session a backtest runs the best checkpoint of",
    )
    task_id = models.CharField(
        max_length=64, blank=True,
        help_text="The django-q2 task last queued for it (a worker slot: see sessions.tasks.run_session)",
    )
    process_id = models.PositiveIntegerField(null=True, blank=True)
    # A process id means something only on its own host: the watchdog checks the process only when it
    # runs on the same one, and otherwise relies on the heartbeat.
    worker_host = models.CharField(max_length=255, blank=True, help_text="Host name of the worker running it")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    device = models.CharField(max_length=32, blank=True, help_text="e.g. cpu, cuda:0")
    priority = models.IntegerField(default=0)
    # django-q2 cannot stop a running task, so stop requests are flags the worker polls between steps.
    cancel_requested = models.BooleanField(default=False)
    pause_requested = models.BooleanField(default=False)

    log_path = models.CharField(max_length=500, blank=True)
    checkpoint_path = models.CharField(max_length=500, blank=True)
    progress_epoch = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0, help_text="0 while unknown")
    result_data = models.JSONField(default=dict, blank=True)
    # Derived from result_data on every write (save() and session_transition): lists and the dashboard
    # show a report's headline without loading, or having the database parse, its series.
    report_summary = models.JSONField(
        null=True, blank=True, editable=False,
        help_text="The report's metrics, benchmark metrics, alpha and beta without its series; empty without a report",
    )
    error = models.TextField(blank=True, help_text="Why the session reached its current status, if it says")
    # The error is replaced as the session moves on (a claim clears it); why its current attempt runs
    # at all stays here: "attempt 2: retried after: <the one-line reason attempt 1 ended>".
    retry_reason = models.TextField(blank=True, help_text="Why its current attempt was started again, if it was")
    threads = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="torch threads its latest run was given (sessions.services.training_threads)",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=SessionStatus.values), name="session_status_valid"),
            models.CheckConstraint(
                condition=Q(progress_total=0) | Q(progress_epoch__lte=F("progress_total")),
                name="session_progress_within_total",
                violation_error_message=EPOCH_BEYOND_TOTAL,
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="session_status_idx"),
            models.Index(fields=["strategy", "-created_at"], name="session_strategy_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.strategy} {self.session_type} #{self.pk}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def has_report(self) -> bool:
        """Whether the session ended with a backtest report (result_data["report"]; read from its
        summary, which lists load without result_data)."""
        return self.report_summary is not None

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        writes_result = "result_data" in (update_fields or ()) or (
            update_fields is None and "result_data" not in self.get_deferred_fields()
        )
        if writes_result:
            self.report_summary = report_summary_of(self.result_data)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "report_summary"}
        super().save(*args, **kwargs)


def report_summary_of(result_data: dict | None) -> dict | None:
    """The report in `result_data` without its series (equity curve, drawdown, trades, orders, ...):
    the engine's "metrics", "benchmark_metrics", "alpha", "beta" and the like. None without a report."""
    report = (result_data or {}).get("report")
    if not report:
        return None
    return {key: value for key, value in report.items() if not isinstance(value, list)}


FINAL_STATUSES = frozenset({SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED})


class PerformanceMetric(models.Model):
    """One value of one namespaced metric ("train/loss", "eval/sharpe") at one epoch of a session."""

    session = models.ForeignKey(StrategySession, on_delete=models.CASCADE, related_name="metrics")
    metric_type = models.CharField(max_length=64)
    # NULL stands for NaN/inf: JSON cannot carry them and SQLite stores NaN as NULL anyway, so the two
    # databases agree.
    value = models.FloatField(null=True, blank=True)
    epoch = models.PositiveIntegerField(default=0)
    timestamp = models.DateTimeField(default=timezone.now)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["session", "epoch"], name="metric_session_epoch_idx"),
            models.Index(fields=["timestamp"], name="metric_timestamp_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_type}={self.value} (epoch {self.epoch})"


class ResourceUsage(models.Model):
    """A sample of what a session's worker process uses, taken every RESOURCE_SAMPLE_SECONDS."""

    session = models.ForeignKey(StrategySession, on_delete=models.CASCADE, related_name="resource_usage")
    cpu_percent = models.FloatField()
    memory_mb = models.FloatField()
    gpu_percent = models.FloatField(null=True, blank=True, help_text="Empty when the session runs on CPU")
    gpu_memory_mb = models.FloatField(null=True, blank=True)
    disk_io_mb = models.FloatField(default=0)
    network_io_mb = models.FloatField(default=0)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "resource usage"
        indexes = [
            models.Index(fields=["session", "recorded_at"], name="resource_session_recorded_idx"),
        ]

    def __str__(self) -> str:
        return f"session {self.session_id} at {self.recorded_at:%Y-%m-%d %H:%M:%S}"


class AlertKind(models.TextChoices):
    SESSION_FAILED = "session_failed", "Session failed"
    LOSS_NAN = "loss_nan", "Loss is NaN or infinite"
    LOSS_DIVERGING = "loss_diverging", "Loss diverging"
    RESOURCE_LIMIT = "resource_limit", "Resource near its limit"


class AlertSeverity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class Alert(models.Model):
    """Something about a session a person should look at (sessions.alerts detects and records them)."""

    Kind = AlertKind
    Severity = AlertSeverity

    session = models.ForeignKey(StrategySession, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    message = models.TextField()
    epoch = models.PositiveIntegerField(null=True, blank=True, help_text="The epoch it is about, if any")
    value = models.FloatField(null=True, blank=True, help_text="The reading that raised it (empty for NaN)")
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AlertKind.values), name="alert_kind_valid"),
            models.CheckConstraint(condition=Q(severity__in=AlertSeverity.values), name="alert_severity_valid"),
            # An epoch run again (a retry resumed from an earlier checkpoint) must not raise its alert
            # twice. NULL epochs are distinct here on both databases: resource alerts repeat (rate
            # limited by the service), and a session fails once, which the next constraint says.
            models.UniqueConstraint(fields=["session", "kind", "epoch"], name="alert_once_per_epoch"),
            models.UniqueConstraint(
                fields=["session", "kind"], condition=Q(kind=AlertKind.SESSION_FAILED), name="alert_one_failure",
            ),
        ]
        indexes = [
            # The stream's tail reads a session's new alerts by id.
            models.Index(fields=["session", "id"], name="alert_session_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.severity} {self.kind} on session {self.session_id}"
