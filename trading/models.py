"""Deployments of trained strategies, and the record of what each traded: orders, fills, positions,
equity. Money and quantities are float64 (the engine's own numbers, stored and read back bit for bit,
so the record reconciles with a broker exactly); pages show them to the cent."""
from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q

from engine.live.orders import OrderStatus as EngineOrderStatus
from sessions.models import StrategySession
from strategies.models import Strategy


class ExchangeAccount(models.Model):
    """A user's API keys at one exchange (a ccxt exchange id), sealed with Fernet (trading.credentials).

    The keys are never shown again after entry and never logged; `key_hint` (the key's last four
    characters) tells accounts apart."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exchange_accounts")
    name = models.CharField(max_length=100)
    exchange = models.CharField(max_length=50, help_text="ccxt exchange id, e.g. binance")
    base_url = models.CharField(
        max_length=300, blank=True, validators=[URLValidator(schemes=["http", "https"])],
        help_text="The exchange's API address when it is not the public one (a testnet); empty: the exchange's own",
    )
    quote = models.CharField(max_length=16, default="USDT", help_text="The currency the account is valued in")
    api_key_sealed = models.TextField(editable=False)
    secret_sealed = models.TextField(editable=False)
    key_hint = models.CharField(max_length=8, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="exchange_account_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.exchange}, …{self.key_hint})"


class DeploymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"
    HALTED = "halted", "Halted"
    FAILED = "failed", "Failed"


class Deployment(models.Model):
    """A training session's best checkpoint trading forward, on paper or live, bar by bar."""

    Status = DeploymentStatus

    class Mode(models.TextChoices):
        PAPER = "paper", "Paper"
        LIVE = "live", "Live"

    class FeedKind(models.TextChoices):
        REPLAY = "replay", "Replay of the dataset's test period"
        LIVE = "live", "Live bars from the exchange"

    class FillModel(models.TextChoices):
        CLOSE = "close", "At the decision bar's close (the backtest's assumption)"
        NEXT_OPEN = "next_open", "At the next bar's open"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="deployments")
    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="deployments")
    # SET_NULL: the deployment keeps its own copy of the config and the checkpoint, so it still says
    # what traded after its training session is deleted.
    session = models.ForeignKey(StrategySession, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="deployments")
    name = models.CharField(max_length=200)
    mode = models.CharField(max_length=8, choices=Mode.choices)
    feed = models.CharField(max_length=8, choices=FeedKind.choices)
    account = models.ForeignKey(ExchangeAccount, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="deployments")
    # Only trading.services.deployment_transition assigns status.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, editable=False)
    error = models.TextField(blank=True, help_text="Why the deployment reached its current status, if it says")

    # What trades: fixed at creation.
    config = models.JSONField(help_text="The run config of the training session it deploys")
    dataset_name = models.CharField(max_length=100, help_text="The dataset (replay) or market it trades")
    symbols = models.JSONField(default=list)
    checkpoint_path = models.CharField(max_length=500)
    checkpoint_sha256 = models.CharField(max_length=64)
    replay_start = models.PositiveIntegerField(null=True, blank=True, help_text="First bar of a replay")
    replay_stop = models.PositiveIntegerField(null=True, blank=True, help_text="End (exclusive) of a replay")
    bars_per_second = models.FloatField(null=True, blank=True, help_text="Replay speed; empty: as fast as possible")
    timeframe = models.CharField(max_length=8, blank=True, help_text="Live feed bar length, e.g. 1m, 1h")
    fill_model = models.CharField(max_length=16, choices=FillModel.choices, default=FillModel.CLOSE)
    fee_rate = models.FloatField(help_text="Paper fee as a fraction of each fill's notional")
    slippage_bps = models.FloatField(default=0.0)
    volume_cap = models.FloatField(null=True, blank=True, help_text="Largest fraction of a bar's volume one fill takes")
    initial_cash = models.FloatField()

    # Where it stands (the trading process writes these with each bar).
    broker_state = models.JSONField(default=dict, blank=True, editable=False,
                                    help_text="The paper broker's book (what a venue would hold)")
    last_bar = models.IntegerField(null=True, blank=True, editable=False, help_text="Index of the last bar handled")
    last_bar_time = models.CharField(max_length=32, blank=True, editable=False)
    bars_done = models.PositiveIntegerField(default=0, editable=False)
    cash = models.FloatField(null=True, blank=True, editable=False)
    equity = models.FloatField(null=True, blank=True, editable=False)
    peak_equity = models.FloatField(null=True, blank=True, editable=False)
    day_start_equity = models.FloatField(null=True, blank=True, editable=False)
    day = models.CharField(max_length=10, blank=True, editable=False, help_text="Trading day of day_start_equity")
    # The closes of the first bar: the benchmark holds equal amounts of every symbol from there, at no cost.
    benchmark_prices = models.JSONField(default=list, blank=True, editable=False)

    # The lease: which trading process runs it, until when (renewed with its heartbeat).
    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    lease_host = models.CharField(max_length=255, blank=True, editable=False)
    lease_pid = models.PositiveIntegerField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    reconciled_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    stopped_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeploymentStatus.values), name="deployment_status_valid"),
            models.CheckConstraint(condition=~Q(mode="live") | Q(account__isnull=False),
                                   name="deployment_live_needs_account"),
        ]
        indexes = [models.Index(fields=["status"], name="deployment_status_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.mode}) #{self.pk}"

    @property
    def is_live(self) -> bool:
        return self.mode == self.Mode.LIVE

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_DEPLOYMENT_STATUSES

    @property
    def pnl(self) -> float | None:
        return None if self.equity is None else self.equity - self.initial_cash

    @property
    def pnl_today(self) -> float | None:
        return None if self.equity is None or self.day_start_equity is None else self.equity - self.day_start_equity

    @property
    def drawdown(self) -> float | None:
        """Fraction <= 0 of the equity below its peak."""
        if self.equity is None or not self.peak_equity:
            return None
        return self.equity / self.peak_equity - 1.0


FINAL_DEPLOYMENT_STATUSES = frozenset({DeploymentStatus.STOPPED, DeploymentStatus.FAILED})
# What a trading process runs (its lease only matters for these).
ACTIVE_DEPLOYMENT_STATUSES = frozenset({DeploymentStatus.PENDING, DeploymentStatus.RUNNING, DeploymentStatus.PAUSED})

OrderStatus = models.TextChoices(
    "OrderStatus", [(s.name, (s.value, s.value.replace("_", " "))) for s in EngineOrderStatus])


class Order(models.Model):
    """An order of a deployment, as sent to its broker (or refused by the risk check before that)."""

    Status = OrderStatus

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="orders")
    client_order_id = models.CharField(max_length=64)
    bar_index = models.IntegerField(help_text="The bar it was decided at")
    bar_time = models.CharField(max_length=32)
    symbol = models.CharField(max_length=50)
    side = models.CharField(max_length=4)
    quantity = models.FloatField()
    order_type = models.CharField(max_length=8, default="market")
    limit_price = models.FloatField(null=True, blank=True)
    time_in_force = models.CharField(max_length=4, default="gtc")
    # Only trading.ledger moves it, through engine.live.orders.ORDER_TRANSITIONS.
    status = models.CharField(max_length=20, choices=OrderStatus.choices, editable=False)
    filled_quantity = models.FloatField(default=0.0)
    average_price = models.FloatField(null=True, blank=True)
    fees = models.FloatField(default=0.0)
    broker_order_id = models.CharField(max_length=100, blank=True)
    reason = models.TextField(blank=True)
    refused_by_risk = models.BooleanField(default=False, help_text="Refused by the risk check; never sent")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "client_order_id"], name="order_client_id_unique"),
            models.CheckConstraint(condition=Q(status__in=[s.value for s in EngineOrderStatus]),
                                   name="order_status_valid"),
        ]
        indexes = [models.Index(fields=["deployment", "id"], name="order_deployment_id_idx")]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity:g} {self.symbol} ({self.status})"


class Fill(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="fills")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills")
    fill_id = models.CharField(max_length=100, help_text="The broker's id of the execution")
    symbol = models.CharField(max_length=50)
    side = models.CharField(max_length=4)
    quantity = models.FloatField()
    price = models.FloatField()
    fee = models.FloatField(help_text="Paid from cash, in the account's currency")
    fee_base = models.FloatField(default=0.0, help_text="Paid in the traded asset, in its units (a venue's choice)")
    time = models.CharField(max_length=32, help_text="The bar's (paper) or the venue's (live) time")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["deployment", "fill_id"], name="fill_once")]
        indexes = [models.Index(fields=["deployment", "id"], name="fill_deployment_id_idx")]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity:g} {self.symbol} @ {self.price:g}"


class Position(models.Model):
    """Units held of one symbol (negative: short), the sum of the deployment's fills."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="positions")
    symbol = models.CharField(max_length=50)
    quantity = models.FloatField(default=0.0)
    last_price = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [models.UniqueConstraint(fields=["deployment", "symbol"], name="position_once")]

    def __str__(self) -> str:
        return f"{self.quantity:g} {self.symbol}"


class EquityPoint(models.Model):
    """The account marked at a bar's close, before that bar's orders (what a backtest's equity curve
    holds at the bar), and the benchmark over the same bars."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="equity_points")
    bar_index = models.IntegerField()
    time = models.CharField(max_length=32)
    equity = models.FloatField()
    cash = models.FloatField()
    benchmark = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["bar_index"]
        constraints = [models.UniqueConstraint(fields=["deployment", "bar_index"], name="equity_point_once")]
        indexes = [models.Index(fields=["deployment", "id"], name="equity_deployment_id_idx")]


class TradingWorker(models.Model):
    """A running `manage.py trade` process, so that processes can split the deployments fairly and see
    when one of them is gone (its heartbeat stops, or its pid is dead on the same host)."""

    owner = models.CharField(max_length=64, unique=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.owner} on {self.host} (pid {self.pid})"


class DeploymentEvent(models.Model):
    """Something a person should know about a deployment: started, paused, halted and why, failed."""

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["deployment", "id"], name="event_deployment_id_idx")]
