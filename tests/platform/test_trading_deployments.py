"""Deployments: created from a completed training, run by the trading process bar by bar, recorded to
the cent, and ending with the backtest report's equity curve when replayed with close fills."""
import json
import os

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from common.errors import Conflict, NotFound
from strategies.services import strategy_delete
from trading.models import Deployment, DeploymentEvent, EquityPoint, Fill, Order, Position
from trading.process import TradingProcess
from trading.services import (
    IllegalDeploymentTransition,
    deployment_create,
    deployment_pause,
    deployment_resume,
    deployment_stop,
)
from trading.services.deployments import file_sha256

pytestmark = pytest.mark.django_db(transaction=True)


def run_until(process: TradingProcess, deployment: Deployment, statuses: set[str], *, bars: int | None = None):
    """Tick `process` until the deployment reaches one of `statuses` (or has handled `bars` bars)."""
    for _ in range(100_000):
        process.tick()
        deployment.refresh_from_db()
        if deployment.status in statuses or (bars is not None and deployment.bars_done >= bars):
            return deployment
    raise AssertionError(f"deployment {deployment.pk} stayed {deployment.status}")


def test_a_paper_replay_ends_with_the_backtest_reports_equity_curve_and_a_consistent_record(user, trained_session):
    deployment = deployment_create(session=trained_session, user=user)
    assert deployment.status == "pending" and deployment.mode == "paper" and deployment.feed == "replay"
    assert deployment.checkpoint_sha256 == file_sha256(deployment.checkpoint_path)
    assert deployment.config == trained_session.config
    assert deployment.fee_rate == trained_session.config["env"]["transaction_cost"]

    done = run_until(TradingProcess(), deployment, {"stopped", "failed", "halted"})
    assert done.status == "stopped", done.error
    assert done.error == "the replay reached the end of its period"

    report = trained_session.result_data["report"]
    expected = np.array([point["value"] for point in report["equity_curve"]])
    curve = np.array(list(EquityPoint.objects.filter(deployment=done).values_list("equity", flat=True)))
    assert len(curve) == len(expected) == done.bars_done
    np.testing.assert_allclose(curve, expected, rtol=1e-9, atol=0)

    # The record adds up: positions are the sum of the fills, the cash what they paid and got.
    fills = list(Fill.objects.filter(deployment=done))
    assert fills and Order.objects.filter(deployment=done, status="filled").count() == len(
        {f.order_id for f in fills})
    for position in Position.objects.filter(deployment=done):
        signed = sum(f.quantity if f.side == "buy" else -f.quantity for f in fills if f.symbol == position.symbol)
        assert position.quantity == pytest.approx(signed, rel=1e-12, abs=1e-9)
    assert done.broker_state["cash"] == done.cash
    last = EquityPoint.objects.filter(deployment=done).last()
    assert done.equity == last.equity and done.last_bar == last.bar_index
    assert json.dumps(done.broker_state, allow_nan=False)


def test_a_checkpoint_changed_after_deployment_is_refused_and_the_deployment_fails(user, trained_session):
    deployment = deployment_create(session=trained_session, user=user)
    with open(deployment.checkpoint_path, "ab") as file:
        file.write(b"tampered")
    done = run_until(TradingProcess(), deployment, {"failed"})
    assert "is not the one deployed" in done.error and "refusing to load it" in done.error
    assert not Order.objects.filter(deployment=done).exists()


def test_pause_resume_and_stop_take_effect_before_the_next_bar(user, trained_session):
    deployment = deployment_create(session=trained_session, user=user)
    process = TradingProcess()
    running = run_until(process, deployment, set(), bars=5)
    paused = deployment_pause(deployment=running, user=user)
    bars = paused.bars_done
    for _ in range(20):
        process.tick()
    paused.refresh_from_db()
    assert paused.status == "paused" and paused.bars_done == bars

    resumed = deployment_resume(deployment=paused, user=user)
    resumed = run_until(process, resumed, set(), bars=bars + 3)
    stopped = deployment_stop(deployment=resumed, user=user)
    bars = stopped.bars_done
    for _ in range(5):
        process.tick()
    stopped.refresh_from_db()
    assert stopped.status == "stopped" and stopped.bars_done == bars and stopped.lease_owner == ""
    with pytest.raises(IllegalDeploymentTransition):
        deployment_resume(deployment=stopped, user=user)
    moves = list(DeploymentEvent.objects.filter(deployment=stopped).order_by("id").values_list("message", flat=True))
    assert [m.split(":")[0] for m in moves] == ["pending -> running", "running -> paused", "paused -> running",
                                                 "running -> stopped"]


def test_a_record_that_disagrees_with_the_broker_halts_the_deployment_with_an_alert(user, trained_session):
    deployment = deployment_create(session=trained_session, user=user)
    process = TradingProcess()
    run_until(process, deployment, set(), bars=5)
    position = Position.objects.filter(deployment=deployment).exclude(quantity=0).first()
    Position.objects.filter(pk=position.pk).update(quantity=position.quantity + 1.0)
    process.release_all()  # the next holder reconciles before trading

    halted = run_until(TradingProcess(), deployment, {"halted"})
    assert f"position {position.symbol}: the record holds" in halted.error
    event = DeploymentEvent.objects.filter(deployment=halted).first()
    assert event.severity == "critical" and "disagree" in event.message


def test_what_cannot_be_deployed_is_refused_naming_the_field(user, other_user, trained_session, make_session):
    with pytest.raises(ValidationError) as caught:
        deployment_create(session=trained_session, user=user, mode="live")
    assert caught.value.message_dict == {"account": ["live trading needs an exchange account (account)"]}
    with pytest.raises(ValidationError) as caught:
        deployment_create(session=trained_session, user=user, bars_per_second=float("nan"), volume_cap=2.0)
    assert set(caught.value.message_dict) == {"bars_per_second", "volume_cap"}
    with pytest.raises(NotFound):
        deployment_create(session=trained_session, user=other_user)
    running = make_session(status="running")
    with pytest.raises(ValidationError) as caught:
        deployment_create(session=running, user=user)
    assert "only a completed training can be deployed" in caught.value.message_dict["session"][0]
    assert not Deployment.objects.exists()


def test_a_strategy_with_a_deployment_not_over_is_not_deleted_and_a_stopped_ones_copy_goes_with_it(
        user, trained_session):
    deployment = deployment_create(session=trained_session, user=user)
    strategy = trained_session.strategy
    with pytest.raises(Conflict, match=f"has deployments that are not over \\({deployment.pk}\\)"):
        strategy_delete(strategy=strategy, user=user)
    copy = deployment.checkpoint_path
    deployment_stop(deployment=deployment, user=user)
    strategy_delete(strategy=strategy, user=user)
    assert not Deployment.objects.filter(pk=deployment.pk).exists()
    assert not os.path.exists(copy)
