"""Training alerts: what about a session a person should look at, detected as the worker writes it.

The rules are pure functions over plain values (tested with tables a person can check by hand); the
services below feed them the session's rows and record what they find as Alert rows, which the
session's live stream (sessions.stream) pushes to its viewers.

Who calls what:
  alerts_check_epoch      sessions.services.session_record_epoch, once an epoch's metrics are written
  alerts_session_failed   sessions.services.session_retry_or_fail, when a run's error fails its session
  alerts_check_resources  sessions.services.resource_usage_record, at every resource sample
"""
import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from django.utils import timezone

from sessions.models import Alert, AlertKind, AlertSeverity, PerformanceMetric, StrategySession
from sessions.reasons import failure_reason

LOSS_NOT_FINITE = "{metric} is {value} at epoch {epoch}"
LOSS_DIVERGING = (
    "train/loss {loss:.4g} at epoch {epoch} is above {factor:g}x the median |loss| of the {count} epochs "
    "before ({median:.4g})"
)
MEMORY_NEAR_LIMIT = "memory {used:.0f} MB is above {percent:.0f}% of the machine's {total:.0f} MB"
GPU_MEMORY_NEAR_LIMIT = "GPU memory {used:.0f} MB is above {percent:.0f}% of the device's {total:.0f} MB"

# The loss the divergence rule watches, and the namespace whose *loss* metrics the NaN rule watches.
LOSS_METRIC = "train/loss"
TRAIN_PREFIX = "train/"
DIVERGENCE_FACTOR = 10.0
# A median of fewer epochs is mostly the first, noisy ones: no verdict before this many.
DIVERGENCE_MIN_EPOCHS = 3
RESOURCE_LIMIT_FRACTION = 0.9
# A process near its memory limit stays there for a while: one alert per session per kind per window,
# not one per sample (every RESOURCE_SAMPLE_SECONDS).
RESOURCE_ALERT_INTERVAL = timedelta(minutes=10)

SEVERITY: dict[str, str] = {
    AlertKind.SESSION_FAILED: AlertSeverity.CRITICAL,
    AlertKind.LOSS_NAN: AlertSeverity.CRITICAL,
    AlertKind.LOSS_DIVERGING: AlertSeverity.WARNING,
    AlertKind.RESOURCE_LIMIT: AlertSeverity.WARNING,
}
# Kinds that are not about one epoch and may recur (the service rate-limits them); the others are
# recorded at most once per (session, kind, epoch), as the model's constraints say.
_REPEATABLE = frozenset({AlertKind.RESOURCE_LIMIT})


# The rules ------------------------------------------------------------------------------------------


def is_finite(value: float | None) -> bool:
    """Whether `value` is a real number: None stands for NaN/inf, as PerformanceMetric stores them."""
    return value is not None and math.isfinite(value)


def loss_not_finite(metrics: Mapping[str, float | None]) -> tuple[str, float | None] | None:
    """The first train/*loss* metric (train/loss, train/value_loss, ...) that is NaN, infinite or None,
    as (name, value); None when every one is finite or there is none.

    None counts as not finite: it is how PerformanceMetric stores NaN, while the engine's metrics dict
    carries float("nan"); the rule reads either.
    """
    for name, value in metrics.items():
        if name.startswith(TRAIN_PREFIX) and "loss" in name[len(TRAIN_PREFIX):] and not is_finite(value):
            return name, value
    return None


def loss_median(previous: Sequence[float | None]) -> float | None:
    """The median |loss| of the finite losses in `previous`; None with fewer than DIVERGENCE_MIN_EPOCHS."""
    finite = [abs(value) for value in previous if is_finite(value)]
    if len(finite) < DIVERGENCE_MIN_EPOCHS:
        return None
    return statistics.median(finite)


def loss_diverging(loss: float | None, previous: Sequence[float | None]) -> bool:
    """Whether `loss` diverges from the session's previous epochs' losses, `previous`.

    The rule: `loss` is strictly above DIVERGENCE_FACTOR (10) times the median of |loss| over the
    previous epochs, and there are at least DIVERGENCE_MIN_EPOCHS (3) previous epochs with a finite
    loss. Exactly 10x is not diverging. A non-finite `loss` is not judged here (loss_not_finite's
    case); neither is a loss going far below zero: the rule watches a loss that blows up.
    """
    median = loss_median(previous)
    return median is not None and is_finite(loss) and loss > DIVERGENCE_FACTOR * median


def over_limit(used: float | None, total: float | None) -> bool:
    """Whether `used` is above RESOURCE_LIMIT_FRACTION (90%) of `total`; False when either is unknown."""
    return is_finite(used) and is_finite(total) and total > 0 and used > RESOURCE_LIMIT_FRACTION * total


# The services ---------------------------------------------------------------------------------------


def alert_record(
    *, session: StrategySession, kind: str, message: str, epoch: int | None = None, value: float | None = None,
    now: datetime | None = None,
) -> Alert:
    """Record an alert of `kind` (its severity is SEVERITY[kind]) and return it.

    At most one per (session, kind, epoch): an epoch run again (a retry resumed from an earlier
    checkpoint) or a failure reported twice returns the alert already recorded, unchanged. Resource
    alerts without an epoch are recorded every time; alerts_check_resources rate-limits them.
    A non-finite `value` is stored empty (JSON, which the stream sends, has no NaN). `now` dates it.
    """
    fields = {
        "severity": SEVERITY[kind], "message": message, "value": value if is_finite(value) else None,
        "created_at": now or timezone.now(),
    }
    if kind in _REPEATABLE and epoch is None:
        return Alert.objects.create(session_id=session.pk, kind=kind, epoch=None, **fields)
    alert, _ = Alert.objects.get_or_create(session_id=session.pk, kind=kind, epoch=epoch, defaults=fields)
    return alert


def alerts_check_epoch(*, session: StrategySession, epoch: int, metrics: Mapping[str, float | None]) -> list[Alert]:
    """Apply the loss rules to `metrics`, the epoch's values as the engine reported them (or None
    where stored as NaN), against the losses stored for the session's earlier epochs. Returns the
    alerts of this epoch it recorded or found recorded."""
    alerts = []
    bad = loss_not_finite(metrics)
    if bad is not None:
        name, value = bad
        shown = "NaN" if value is None or math.isnan(value) else str(value)
        alerts.append(alert_record(session=session, kind=AlertKind.LOSS_NAN, epoch=epoch,
                                   message=LOSS_NOT_FINITE.format(metric=name, value=shown, epoch=epoch)))
    loss = metrics.get(LOSS_METRIC)
    if not is_finite(loss):
        return alerts
    # Earlier epochs only: this one's row is written already, and a retry's later epochs are not history.
    previous = list(
        PerformanceMetric.objects.filter(session_id=session.pk, metric_type=LOSS_METRIC, epoch__lt=epoch)
        .values_list("value", flat=True)
    )
    if loss_diverging(loss, previous):
        count = sum(1 for value in previous if is_finite(value))
        message = LOSS_DIVERGING.format(
            loss=loss, epoch=epoch, factor=DIVERGENCE_FACTOR, count=count, median=loss_median(previous)
        )
        alerts.append(alert_record(session=session, kind=AlertKind.LOSS_DIVERGING, epoch=epoch, value=loss,
                                   message=message))
    return alerts


def alerts_session_failed(*, session: StrategySession, error: str) -> Alert:
    """Record that `session` failed, with why in one sentence (sessions.reasons: the traceback's last
    line, without server paths) as the message: every viewer of the session reads it."""
    return alert_record(session=session, kind=AlertKind.SESSION_FAILED, message=failure_reason(error))


def alerts_check_resources(
    *, session: StrategySession, memory_mb: float | None, memory_total_mb: float | None,
    gpu_memory_mb: float | None = None, gpu_total_mb: float | None = None, now: datetime | None = None,
) -> Alert | None:
    """Record a resource_limit warning when the session's memory (RSS) is above 90% of the machine's
    or its GPU memory above 90% of the device's, unless the session had one in the last
    RESOURCE_ALERT_INTERVAL. Memory is judged first: one alert says one resource. Returns it, or None.
    """
    if over_limit(memory_mb, memory_total_mb):
        used, total, template = memory_mb, memory_total_mb, MEMORY_NEAR_LIMIT
    elif over_limit(gpu_memory_mb, gpu_total_mb):
        used, total, template = gpu_memory_mb, gpu_total_mb, GPU_MEMORY_NEAR_LIMIT
    else:
        return None
    now = now or timezone.now()
    recent = Alert.objects.filter(
        session_id=session.pk, kind=AlertKind.RESOURCE_LIMIT, created_at__gt=now - RESOURCE_ALERT_INTERVAL
    )
    if recent.exists():
        return None
    message = template.format(used=used, total=total, percent=RESOURCE_LIMIT_FRACTION * 100)
    return alert_record(session=session, kind=AlertKind.RESOURCE_LIMIT, message=message, value=used, now=now)
