from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q

from engine.tasks import task_choices

TICKERS_NOT_STRINGS = "tickers must be a list of non-empty strings"
DATES_REVERSED = "end_date must not be before start_date"
PERIODS_NOT_POSITIVE = "periods_per_year must be positive"
CONFIG_DISAGREES = "config[{key!r}] is {config!r} but the strategy's {key} is {field!r}"


class Dataset(models.Model):
    """A market-data file the engine can train and backtest on (bars in a CSV file)."""

    name = models.CharField(max_length=100, unique=True)
    frequency = models.CharField(max_length=16, help_text="Bar frequency, e.g. 1d, 1h, 1min")
    periods_per_year = models.FloatField(
        help_text="Bars per year, for annualised metrics (252 for daily equities)",
    )
    tickers = models.JSONField(default=list)
    start_date = models.DateField()
    end_date = models.DateField()
    path = models.CharField(max_length=500, help_text="Path of the CSV file holding the bars")
    checksum = models.CharField(
        max_length=64,
        validators=[RegexValidator(r"^[0-9a-f]{64}$", message="checksum must be a lowercase sha256 hex digest")],
        help_text="sha256 of the file, so a changed file is noticed before training on it",
    )
    n_bars = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")),
                name="dataset_dates_ordered",
                violation_error_message=DATES_REVERSED,
            ),
            models.CheckConstraint(
                condition=Q(periods_per_year__gt=0),
                name="dataset_periods_per_year_positive",
                violation_error_message=PERIODS_NOT_POSITIVE,
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not isinstance(self.tickers, list) or not all(isinstance(t, str) and t for t in self.tickers):
            raise ValidationError({"tickers": TICKERS_NOT_STRINGS})


class Strategy(models.Model):
    """A user's trading strategy: a task, an agent, a dataset and the engine config that ties them."""

    # The engine's tasks (engine.tasks), named as members: Strategy.Task.PORTFOLIO_MANAGEMENT.
    Task = models.TextChoices("Task", [(name.upper(), (name, label)) for name, label in task_choices()])

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="strategies")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    task = models.CharField(max_length=32, choices=Task.choices)
    agent = models.CharField(max_length=32, help_text="Engine agent name, e.g. ppo, dqn, eiie")
    # PROTECT: deleting a dataset must not silently delete the strategies (and results) built on it.
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="strategies")
    config = models.JSONField(default=dict, help_text="The validated engine config (engine.config dump)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "strategies"
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="strategy_name_unique_per_owner"),
        ]
        indexes = [
            # The strategy list: a user's strategies, most recently changed first.
            models.Index(fields=["owner", "-updated_at"], name="strategy_owner_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # The config is what the engine runs; the columns are what the UI lists and filters on.
        # They must describe the same strategy.
        if not isinstance(self.config, dict):
            return
        for key in ("task", "agent"):
            if key in self.config and self.config[key] != getattr(self, key):
                raise ValidationError(
                    {"config": CONFIG_DISAGREES.format(key=key, config=self.config[key], field=getattr(self, key))}
                )
