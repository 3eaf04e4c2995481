"""The risk controller in the trading process: every order's decision recorded, limits clipping a live
deployment, the kill switch latched at three levels (PAUSE places nothing, FLATTEN closes every position
between bars and refuses every entry until lifted), a loss limit tripping it by itself, and limits that
cannot exceed the system-wide ceiling."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from common.errors import Conflict
from risk.limits import Limits
from risk.models import KillSwitch, LimitChange, RiskDecision
from risk.services import emergency_stop, kill_level_for, kill_switch_lift, limits_for, limits_set
from tests.platform.test_trading_deployments import run_until
from trading.models import Deployment, DeploymentEvent, Order, Position
from trading.process import TradingProcess
from trading.services import deployment_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def running(user, trained_session):
    """A paper replay deployment that has traded a few bars, and the process running it."""
    deployment = deployment_create(session=trained_session, user=user)
    process = TradingProcess()
    return run_until(process, deployment, set(), bars=4), process


def held(deployment: Deployment) -> dict[str, float]:
    return {p.symbol: p.quantity for p in Position.objects.filter(deployment=deployment) if p.quantity}


def test_every_order_has_its_decision_recorded(running):
    deployment, _ = running
    decisions = RiskDecision.objects.filter(deployment=deployment)
    assert decisions.count() == Order.objects.filter(deployment=deployment).count() > 0
    assert all(d.approved and d.code == "" for d in decisions)


def test_flatten_closes_every_position_between_bars_and_refuses_entries_until_lifted(user, running):
    deployment, process = running
    assert held(deployment)
    switch = emergency_stop("deployment", "flatten", actor=user, deployment=deployment, reason="drill")
    assert kill_level_for(deployment) == 3 and switch.latched
    bars = Deployment.objects.get(pk=deployment.pk).bars_done

    process.tick()  # the flatten runs at once, at the last bar's closes
    assert held(deployment) == {}
    assert Deployment.objects.get(pk=deployment.pk).bars_done in (bars, bars + 1)

    after = run_until(process, deployment, set(), bars=bars + 4)
    assert held(after) == {}  # stays flat: the policy's entries are clipped to nothing
    refused = RiskDecision.objects.filter(deployment=deployment, approved=False)
    assert all(d.code.startswith("kill_switch") for d in refused)

    kill_switch_lift("deployment", actor=user, deployment=deployment)
    assert kill_level_for(deployment) == 0
    traded = run_until(process, deployment, set(), bars=after.bars_done + 6)
    assert held(traded)  # trades again once a person lifted it


def test_pause_places_nothing_while_the_bars_go_on(user, running):
    deployment, process = running
    orders = Order.objects.filter(deployment=deployment).count()
    emergency_stop("user", "pause", actor=user, user=user)
    later = run_until(process, deployment, set(), bars=deployment.bars_done + 5)
    assert later.status == "running" and Order.objects.filter(deployment=deployment).count() == orders


def test_a_second_trip_raises_the_latched_switch_and_never_lowers_it(user, running):
    deployment, _ = running
    first = emergency_stop("deployment", "halt", actor=user, deployment=deployment)
    assert emergency_stop("deployment", "pause", actor=user, deployment=deployment).pk == first.pk
    assert KillSwitch.objects.get(pk=first.pk).level == "halt"
    assert emergency_stop("deployment", "flatten", actor=user, deployment=deployment).level == "flatten"
    assert KillSwitch.objects.filter(lifted_at__isnull=True).count() == 1
    kill_switch_lift("deployment", actor=user, deployment=deployment)
    with pytest.raises(Conflict):
        kill_switch_lift("deployment", actor=user, deployment=deployment)


def test_a_breached_loss_limit_trips_the_switch_at_the_level_the_limits_name(user, running):
    deployment, process = running
    limits_set(scope="deployment", deployment=deployment, actor=user,
               limits=Limits(max_drawdown_pct=1e-6, breach_level="flatten"))
    switch = None
    for _ in range(200):
        process.tick()
        switch = KillSwitch.objects.filter(deployment=deployment, lifted_at__isnull=True).first()
        if switch:
            break
    assert switch is not None and switch.automatic and switch.level == "flatten"
    assert "tripped at flatten automatically" in switch.reason
    assert DeploymentEvent.objects.filter(deployment=deployment, severity="critical",
                                          message__startswith="kill switch tripped at flatten").exists()


def test_limits_are_the_tightest_that_apply_and_none_exceeds_the_system_ceiling(user, other_user, superuser,
                                                                                 running):
    deployment, _ = running
    with pytest.raises(PermissionDenied):
        limits_set(scope="system", limits=Limits(max_order_notional=1e5), actor=user)
    limits_set(scope="system", limits=Limits(max_order_notional=1e5), actor=superuser)
    with pytest.raises(ValidationError) as caught:
        limits_set(scope="user", user=user, limits=Limits(max_order_notional=2e5), actor=user)
    assert "max_order_notional" in caught.value.message_dict
    limits_set(scope="user", user=user, limits=Limits(max_order_notional=5e4, max_open_orders=10), actor=user)
    limits_set(scope="deployment", deployment=deployment, limits=Limits(max_order_notional=8e4), actor=user)
    applied = limits_for(deployment)
    assert (applied.max_order_notional, applied.max_open_orders) == (5e4, 10)
    assert LimitChange.objects.count() == 3
    with pytest.raises(PermissionDenied):
        limits_set(scope="deployment", deployment=deployment, limits=Limits(), actor=other_user)


def test_halt_cancels_open_orders_at_once_and_no_position_grows(user, running):
    from engine.live.orders import OrderRequest

    deployment, process = running
    runtime = process.runtimes[deployment.pk]
    symbol = runtime.policy.symbols[0]
    # A resting limit buy far below the market: open until something cancels it.
    resting = OrderRequest(client_order_id="manual-1", symbol=symbol, side="buy", quantity=1.0, order_type="limit",
                           limit_price=1e-6)
    runtime.broker.submit(resting, runtime.last_bar)
    assert runtime.broker.open_orders()
    positions = held(deployment)

    emergency_stop("deployment", "halt", actor=user, deployment=deployment)
    process.tick()
    assert runtime.broker.open_orders() == []
    assert Order.objects.get(deployment=deployment, client_order_id="manual-1").status == "cancelled"
    after = held(deployment)  # a bar may have come: under HALT the policy may only reduce
    assert all(abs(after.get(symbol, 0.0)) <= abs(quantity) * (1 + 1e-12) for symbol, quantity in positions.items())
    assert set(after) <= set(positions)
