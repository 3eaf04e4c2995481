"""Training alerts: the rules with tables a person can check by hand, and the services that record
them as the worker writes a session (sessions.alerts)."""
import datetime
import math

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from sessions import alerts, services
from sessions.alerts import (
    GPU_MEMORY_NEAR_LIMIT,
    MEMORY_NEAR_LIMIT,
    loss_diverging,
    loss_not_finite,
    over_limit,
)
from sessions.models import Alert, AlertSeverity, PerformanceMetric
from sessions.models import AlertKind as K
from sessions.models import SessionStatus as S
from sessions.reasons import NO_REASON, failure_reason
from sessions.services import session_submit
from tests.platform.session_helpers import run_here

NAN, INF = float("nan"), float("inf")
WORKER = {"process_id": 4242, "host": "test-host"}


# ------------------------------------------------------------------------------------------ the rules


@pytest.mark.parametrize("metrics, found", [
    ({"train/loss": 0.5, "train/value_loss": 1.0, "eval/sharpe": 1.2}, None),
    ({"train/loss": NAN}, "train/loss"),
    ({"train/loss": INF}, "train/loss"),
    ({"train/loss": -INF}, "train/loss"),
    ({"train/loss": None}, "train/loss"),  # as PerformanceMetric stores NaN
    ({"train/loss": 0.5, "train/value_loss": NAN}, "train/value_loss"),
    ({"train/policy_loss": None, "train/reward": 1.0}, "train/policy_loss"),
    ({"eval/loss": NAN, "train/reward": NAN, "time/epoch_seconds": INF}, None),  # not train/*loss*
    ({}, None),
])
def test_loss_not_finite_finds_a_nan_inf_or_empty_train_loss(metrics, found):
    result = loss_not_finite(metrics)
    assert (result[0] if result else None) == found


@pytest.mark.parametrize("loss, previous, diverging", [
    # median |loss| of (1, 2, 3) is 2: the line is 20.
    (20.0, [1.0, 2.0, 3.0], False),  # exactly 10x
    (20.001, [1.0, 2.0, 3.0], True),  # just above
    (1000.0, [1.0, 2.0], False),  # fewer than 3 previous epochs: no verdict
    (1000.0, [1.0, 2.0, None], False),  # a NaN epoch does not count toward the 3
    (20.001, [1.0, None, 2.0, 3.0], True),
    (20.001, [-1.0, -2.0, 3.0], True),  # the median of |loss|
    (-1000.0, [1.0, 2.0, 3.0], False),  # the rule watches a loss that blows up
    (NAN, [1.0, 2.0, 3.0], False),  # loss_not_finite's case
    (INF, [1.0, 2.0, 3.0], False),
    # median of (1, 1, 1, 100, 100) is 1: one spike does not lift the line.
    (10.5, [1.0, 1.0, 1.0, 100.0, 100.0], True),
    (0.001, [0.0, 0.0, 0.0], True),  # anything above a zero median
])
def test_loss_diverging_above_ten_times_the_median_of_at_least_three_epochs(loss, previous, diverging):
    assert loss_diverging(loss, previous) is diverging


@pytest.mark.parametrize("used, total, over", [
    (900.0, 1000.0, False),  # exactly 90%
    (900.1, 1000.0, True),
    (14_800.0, 16_000.0, True),
    (100.0, None, False),  # no total known (no NVML)
    (None, 1000.0, False),  # no reading (a CPU session's GPU)
    (100.0, 0.0, False),
])
def test_over_limit_above_ninety_percent_of_the_total(used, total, over):
    assert over_limit(used, total) is over


def test_a_failure_is_said_in_one_sentence_without_the_servers_paths():
    error = ('Traceback (most recent call last):\n  File "x.py", line 1\n'
             "PermissionError: [Errno 13] Permission denied: '/srv/trademaster/var/runs/3/last.pt'\n\n")
    assert failure_reason(error) == "[Errno 13] Permission denied: 'last.pt'"
    assert failure_reason("  \n") == NO_REASON


# ------------------------------------------------------------------------------------------ the services


@pytest.fixture
def session(make_session):
    return make_session(S.RUNNING, progress_total=10)


def losses(session, values: list[float | None], *, start: int = 1) -> None:
    PerformanceMetric.objects.bulk_create(
        PerformanceMetric(session=session, metric_type="train/loss", value=value, epoch=epoch)
        for epoch, value in enumerate(values, start=start)
    )


@pytest.mark.django_db
def test_a_nan_loss_is_recorded_once_per_epoch_as_critical(session):
    first = alerts.alerts_check_epoch(session=session, epoch=4, metrics={"train/loss": NAN, "eval/sharpe": 0.1})
    again = alerts.alerts_check_epoch(session=session, epoch=4, metrics={"train/loss": None})  # a retried epoch

    assert [alert.pk for alert in again] == [alert.pk for alert in first]
    alert = Alert.objects.get(session=session)
    assert (alert.kind, alert.severity, alert.epoch, alert.value) == (K.LOSS_NAN, AlertSeverity.CRITICAL, 4, None)
    assert alert.message == "train/loss is NaN at epoch 4"
    alerts.alerts_check_epoch(session=session, epoch=5, metrics={"train/value_loss": INF})
    assert Alert.objects.get(session=session, epoch=5).message == "train/value_loss is inf at epoch 5"


@pytest.mark.django_db
def test_a_diverging_loss_is_a_warning_judged_against_earlier_epochs_only(session):
    losses(session, [1.0, 2.0, 3.0])
    # A row of epoch 5 from an attempt that died: not history for a retried epoch 4.
    losses(session, [0.001], start=5)

    assert alerts.alerts_check_epoch(session=session, epoch=4, metrics={"train/loss": 20.0}) == []
    [alert] = alerts.alerts_check_epoch(session=session, epoch=4, metrics={"train/loss": 25.0})
    alerts.alerts_check_epoch(session=session, epoch=4, metrics={"train/loss": 30.0})

    alert = Alert.objects.get(session=session)
    assert (alert.kind, alert.severity, alert.epoch, alert.value) == (K.LOSS_DIVERGING, AlertSeverity.WARNING, 4, 25.0)
    assert "above 10x the median |loss| of the 3 epochs before (2)" in alert.message


@pytest.mark.django_db
def test_no_divergence_verdict_before_three_epochs(session):
    losses(session, [1.0, 1.0])
    assert alerts.alerts_check_epoch(session=session, epoch=3, metrics={"train/loss": 1e9}) == []


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_second_alert_of_a_kind_for_one_epoch_or_one_failure(session):
    Alert.objects.create(session=session, kind=K.LOSS_NAN, severity="critical", message="x", epoch=1)
    Alert.objects.create(session=session, kind=K.SESSION_FAILED, severity="critical", message="x")
    for kwargs in ({"kind": K.LOSS_NAN, "epoch": 1}, {"kind": K.SESSION_FAILED}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Alert.objects.create(session=session, severity="critical", message="again", **kwargs)
    # Resource alerts carry no epoch and may recur.
    for _ in range(2):
        Alert.objects.create(session=session, kind=K.RESOURCE_LIMIT, severity="warning", message="x")
    assert Alert.objects.filter(session=session).count() == 4


@pytest.mark.django_db
def test_session_record_epoch_records_the_epochs_alerts_with_its_metrics(tiny_strategy, user, runs_dir):
    session = services.session_start(
        session=session_submit(strategy=tiny_strategy, user=user, enqueue=False), **WORKER
    )
    for epoch, loss in enumerate([1.0, 1.0, 1.0, 50.0, NAN], start=1):
        services.session_record_epoch(session=session, epoch=epoch, epochs=5, metrics={"train/loss": loss},
                                      checkpoint="last.pt")
    # The last epoch run again, as a retry resumed from the checkpoint before it does.
    services.session_record_epoch(session=session, epoch=5, epochs=5, metrics={"train/loss": NAN},
                                  checkpoint="last.pt")

    got = Alert.objects.filter(session=session).order_by("id").values_list("kind", "epoch")
    assert list(got) == [(K.LOSS_DIVERGING, 4), (K.LOSS_NAN, 5)]


@pytest.mark.django_db
def test_a_session_failed_by_its_worker_records_why_once(tiny_strategy, user, runs_dir):
    session = services.session_start(
        session=session_submit(strategy=tiny_strategy, user=user, enqueue=False), **WORKER
    )
    error = "Traceback (most recent call last):\n  File \"engine.py\", line 9\nRuntimeError: CUDA out of memory\n"

    services.session_retry_or_fail(session=session, error=error, retry=False)

    alert = Alert.objects.get(session=session)
    assert (alert.kind, alert.severity, alert.message) == (K.SESSION_FAILED, AlertSeverity.CRITICAL,
                                                           "CUDA out of memory")
    alerts.alerts_session_failed(session=session, error="reported twice")
    assert Alert.objects.filter(session=session).count() == 1


@pytest.mark.django_db
def test_a_retried_failure_raises_no_alert_until_the_retries_are_spent(tiny_strategy, user, runs_dir, settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "MAX_RETRIES": 1}
    session = services.session_start(
        session=session_submit(strategy=tiny_strategy, user=user, enqueue=False), **WORKER
    )
    services.session_retry_or_fail(session=session, error="ValueError: first")
    assert session.status == S.QUEUED and not Alert.objects.exists()

    session = services.session_start(session=session, **WORKER)
    services.session_retry_or_fail(session=session, error="ValueError: second")
    assert session.status == S.FAILED
    assert list(Alert.objects.values_list("kind", "message")) == [(K.SESSION_FAILED, "ValueError: second")]


@pytest.mark.django_db
def test_a_run_that_fails_in_the_runner_records_session_failed(tiny_strategy, user, runs_dir):
    session = session_submit(strategy=tiny_strategy, user=user, enqueue=False)
    session.config = {**session.config, "dataset": "/no/such/file.csv"}
    session.save(update_fields=["config"])

    done = run_here(session)

    assert done.status == S.FAILED
    alert = Alert.objects.get(session=done)
    assert alert.kind == K.SESSION_FAILED and alert.message == failure_reason(done.error)
    assert "unknown dataset 'file.csv'" in alert.message and "/no/such" not in alert.message


@pytest.mark.django_db
def test_resource_alerts_judge_memory_then_gpu_and_come_once_per_ten_minutes(session):
    now = timezone.now()

    def check(minutes: float, **readings):
        readings = {"memory_mb": 1000.0, "memory_total_mb": 16_000.0, **readings}
        return alerts.alerts_check_resources(session=session, now=now + datetime.timedelta(minutes=minutes), **readings)

    assert check(0, memory_mb=14_400.0) is None  # exactly 90%
    assert check(0, gpu_memory_mb=7_000.0, gpu_total_mb=8_000.0) is None  # 87.5%
    first = check(0, memory_mb=15_000.0)
    assert (first.kind, first.severity, first.value, first.epoch) == (K.RESOURCE_LIMIT, AlertSeverity.WARNING,
                                                                       15_000.0, None)
    assert first.message == MEMORY_NEAR_LIMIT.format(used=15_000, percent=90, total=16_000)
    assert check(9.9, memory_mb=15_500.0) is None
    assert check(9.9, gpu_memory_mb=7_900.0, gpu_total_mb=8_000.0) is None  # one per kind, whichever resource
    later = check(10.1, gpu_memory_mb=7_900.0, gpu_total_mb=8_000.0)
    assert later.message == GPU_MEMORY_NEAR_LIMIT.format(used=7_900, percent=90, total=8_000)
    assert Alert.objects.filter(session=session).count() == 2


@pytest.mark.django_db
def test_resource_usage_record_raises_the_alert_against_the_totals_it_is_given(session):
    sample = {"cpu_percent": 10.0, "memory_mb": 950.0, "disk_io_mb": 0.0, "gpu_percent": None, "gpu_memory_mb": None}
    services.resource_usage_record(session=session, sample=sample)  # no totals known: no verdict
    assert not Alert.objects.exists()

    services.resource_usage_record(session=session, sample=sample, memory_total_mb=1000.0)

    assert Alert.objects.get(session=session).kind == K.RESOURCE_LIMIT
    assert session.resource_usage.count() == 2


def test_the_resource_sampler_knows_the_machines_memory():
    import psutil

    from sessions.monitor import ResourceSampler

    sampler = ResourceSampler("cpu")
    try:
        assert math.isclose(sampler.memory_total_mb, psutil.virtual_memory().total / 2**20)
        assert sampler.gpu.total_mb is None
    finally:
        sampler.close()


@pytest.mark.django_db
def test_the_admin_lists_filters_and_searches_alerts_and_lets_a_person_acknowledge_one(admin_client, session):
    alert = alerts.alert_record(session=session, kind=K.LOSS_NAN, epoch=2, message="train/loss is NaN at epoch 2")
    changelist = reverse("admin:training_sessions_alert_changelist")

    assert "train/loss is NaN" in admin_client.get(changelist, {"severity__exact": "critical", "q": "NaN"}).text
    assert "train/loss is NaN" not in admin_client.get(changelist, {"severity__exact": "warning"}).text
    assert admin_client.get(reverse("admin:training_sessions_alert_add")).status_code == 403
    now = timezone.now().replace(microsecond=0)
    response = admin_client.post(reverse("admin:training_sessions_alert_change", args=[alert.pk]), {
        "acknowledged_at_0": now.strftime("%Y-%m-%d"), "acknowledged_at_1": now.strftime("%H:%M:%S"),
    })
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None and alert.message == "train/loss is NaN at epoch 2"
