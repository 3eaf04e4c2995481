"""The deployment status machine: the table, the one function that moves a status, and two movers
racing (one wins); and the order record moving only through the engine's order table."""
import itertools
import threading

import pytest
from django.db import connection

from engine.live.orders import Order as EngineOrder
from engine.live.orders import OrderRequest
from engine.live.venue import Bar
from trading.ledger import LedgerError, record_order
from trading.models import Deployment, DeploymentEvent, DeploymentStatus
from trading.services import (
    DeploymentTransitionConflict,
    IllegalDeploymentTransition,
    deployment_transition,
)
from trading.services.transitions import TRANSITIONS

S = DeploymentStatus


@pytest.fixture
def deployment(strategy) -> Deployment:
    """A deployment row as deployment_create leaves it (the moves need no checkpoint)."""
    return Deployment.objects.create(owner=strategy.owner, strategy=strategy, name="d", mode="paper", feed="replay",
                                     config=strategy.config, dataset_name="synthetic", symbols=["SYN00"],
                                     checkpoint_path="", checkpoint_sha256="", fee_rate=0.001, initial_cash=1e6)


def force(deployment: Deployment, status: str) -> Deployment:
    Deployment.objects.filter(pk=deployment.pk).update(status=status)
    deployment.refresh_from_db()
    return deployment


def test_the_table_is_pending_running_paused_stopped_plus_halted_and_failed():
    assert TRANSITIONS[S.PENDING] == {S.RUNNING, S.STOPPED, S.HALTED, S.FAILED}
    assert TRANSITIONS[S.RUNNING] == {S.PAUSED, S.STOPPED, S.HALTED, S.FAILED}
    assert S.RUNNING in TRANSITIONS[S.PAUSED] and S.RUNNING in TRANSITIONS[S.HALTED]
    assert TRANSITIONS[S.STOPPED] == TRANSITIONS[S.FAILED] == frozenset()


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "to"), list(itertools.product(S.values, S.values)))
def test_a_move_happens_exactly_when_the_table_allows_it_and_is_logged(deployment, current, to):
    force(deployment, current)
    if to in TRANSITIONS[current]:
        moved = deployment_transition(deployment=deployment, to=to, error="because")
        assert moved.status == to and moved.error == "because"
        assert DeploymentEvent.objects.get(deployment=moved).message == f"{current} -> {to}: because"
        assert (moved.stopped_at is not None) == (to in (S.STOPPED, S.FAILED))
    else:
        with pytest.raises(IllegalDeploymentTransition):
            deployment_transition(deployment=deployment, to=to)
        assert Deployment.objects.get(pk=deployment.pk).status == current


@pytest.mark.django_db
def test_a_move_from_a_status_another_process_changed_is_a_conflict(deployment):
    seen = Deployment.objects.get(pk=deployment.pk)
    deployment_transition(deployment=deployment, to=S.STOPPED)
    with pytest.raises(DeploymentTransitionConflict, match="another process moved it to 'stopped' first"):
        deployment_transition(deployment=seen, to=S.RUNNING)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_threads_racing_to_move_one_deployment_leave_one_winner(deployment):
    assert connection.vendor == "postgresql"
    results = []
    barrier = threading.Barrier(2)

    def move(to):
        mine = Deployment.objects.get(pk=deployment.pk)
        barrier.wait()
        try:
            results.append(deployment_transition(deployment=mine, to=to).status)
        except DeploymentTransitionConflict:
            results.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=move, args=(to,)) for to in (S.RUNNING, S.STOPPED)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results)[0] == "conflict" and len(results) == 2
    assert Deployment.objects.get(pk=deployment.pk).status in results


@pytest.mark.django_db
def test_the_record_refuses_an_order_moving_backwards(deployment):
    bar = Bar(index=3, time="2020-01-06T00:00:00", symbols=("SYN00",), open=None, high=None, low=None, close=None,
              volume=None)
    request = OrderRequest(client_order_id="d1b3s0", symbol="SYN00", side="buy", quantity=1.0)
    record_order(deployment, EngineOrder(request, status="filled", filled_quantity=1.0), bar)
    with pytest.raises(LedgerError, match="the broker reports 'accepted' after 'filled'"):
        record_order(deployment, EngineOrder(request, status="accepted"), bar)
