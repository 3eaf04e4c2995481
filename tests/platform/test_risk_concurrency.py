"""The kill switch under real concurrency, on PostgreSQL: two processes tripping and lifting the same
switches at the same moment leave one consistent latched switch per target; a trip waits for the row
lock a bar holds, so an order checked before the trip is never sent after it; and a real `manage.py
trade` process under HALT then FLATTEN sends only reducing orders from the trip's commit on, and ends flat.

PostgreSQL only (marker `postgres`): the other processes, and the threads' connections, need a database
that several connections share (pytest-django's SQLite test database lives in this process's memory).
"""
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Max

from common.errors import Conflict
from engine.live.orders import OrderRequest
from risk.controller import KillLevel, is_reducing
from risk.models import KillSwitch
from risk.services import NOTHING_TRIPPED, emergency_stop, kill_level_for, kill_switch_lift
from tests.platform.deployment_helpers import make_deployment
from tests.platform.test_trading_process import WAIT_SECONDS, fresh, wait_for
from tests.platform.test_trading_process import trade as trade  # noqa: F401 - the fixture, for this module
from trading.models import Deployment, Order, Position
from trading.services import deployment_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
LEVELS = ("pause", "halt", "flatten")
TARGETS = ("deployment", "user", "global")
ROUNDS = 40
WORKER = ("import django; django.setup(); "
          "from tests.platform.test_risk_concurrency import switch_worker; switch_worker()")


@pytest.fixture(autouse=True)
def postgresql(transactional_db):
    assert connection.vendor == "postgresql", "the risk concurrency tests need PostgreSQL (DATABASE_URL)"


# -- the other processes ---------------------------------------------------------------------------

def switch_worker() -> None:
    """A process of the race (`python -c WORKER DEPLOYMENT_ID`): says "ready", then for each line of
    operations on stdin ([["trip", target, level] or ["lift", target], ...]) does them in order, each in
    its own transactions as the API and manage.py would, and prints a line of their results:
    {"pk", "level"} of the switch tripped or lifted, or {"refused": message} (a lift with nothing latched).
    Any other error ends the process: the test then fails on its missing line."""
    deployment = Deployment.objects.select_related("owner").get(pk=int(sys.argv[1]))
    root = get_user_model().objects.get(username="root")
    owner = deployment.owner
    where = {"deployment": ({"deployment": deployment}, owner), "user": ({"user": owner}, owner), "global": ({}, root)}
    print("ready", flush=True)
    for line in sys.stdin:
        results = []
        for action, target, *level in json.loads(line):
            keywords, actor = where[target]
            try:
                if action == "trip":
                    switch = emergency_stop(target, level[0], actor=actor, **keywords)
                else:
                    switch = kill_switch_lift(target, actor=actor, **keywords)
            except Conflict as error:
                results.append({"refused": str(error)})
                continue
            results.append({"pk": switch.pk, "level": switch.level})
        print(json.dumps(results), flush=True)


class Racer:
    """One switch_worker process on this test's database."""

    def __init__(self, deployment: Deployment, log: Path):
        db = connection.settings_dict
        url = (f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/"
               f"{db['NAME']}")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "trademaster_web.settings", "DATABASE_URL": url}
        self.log = log
        self.process = subprocess.Popen([sys.executable, "-c", WORKER, str(deployment.pk)], cwd=ROOT, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log.open("w"),
                                        text=True)

    def line(self) -> str:
        line = self.process.stdout.readline()
        assert line, f"the racer ended:\n{self.log.read_text()[-3000:]}"
        return line

    def send(self, operations: list[list[str]]) -> None:
        self.process.stdin.write(json.dumps(operations) + "\n")
        self.process.stdin.flush()

    def results(self) -> list[dict]:
        return json.loads(self.line())

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=WAIT_SECONDS)


@pytest.fixture
def racers(strategy, superuser, tmp_path):
    """Two racer processes, both ready, and the running deployment (of ada) they trip and lift."""
    deployment = make_deployment(strategy)
    both = [Racer(deployment, tmp_path / f"racer-{n}.log") for n in (1, 2)]
    try:
        for racer in both:
            assert racer.line() == "ready\n"
        yield deployment, both
    finally:
        for racer in both:
            if racer.process.poll() is None:
                racer.process.kill()
                racer.process.wait(timeout=10)


def on(target: str, deployment: Deployment) -> dict:
    """The switch's scope and target keywords (of the services) of `target`."""
    return {"deployment": {"scope": "deployment", "deployment": deployment},
            "user": {"scope": "user", "user": deployment.owner}, "global": {"scope": "global"}}[target]


def latched_on(target: str, deployment: Deployment) -> list[KillSwitch]:
    return list(KillSwitch.objects.filter(lifted_at__isnull=True, **on(target, deployment)))


def set_up(kind: str, target: str, deployment: Deployment, root, rng: random.Random) -> KillSwitch | None:
    """The state a race of `kind` starts from: nothing latched on the target (trip/trip), or a switch
    latched at a random level (trip/lift, lift/lift), which it returns."""
    if latched_on(target, deployment):
        kill_switch_lift(actor=root, **on(target, deployment))
    if kind == "trip/trip":
        return None
    return emergency_stop(level=rng.choice(LEVELS), actor=root, **on(target, deployment))


def operations(kind: str, target: str, rng: random.Random) -> list[list[str]]:
    """The two racers' operations on `target` in a race of `kind` (which racer trips is drawn)."""
    def trip():
        return ["trip", target, rng.choice(LEVELS)]

    pair = {"trip/trip": [trip(), trip()], "trip/lift": [trip(), ["lift", target]],
            "lift/lift": [["lift", target], ["lift", target]]}[kind]
    return pair if rng.random() < 0.5 else pair[::-1]


def check_race(kind: str, target: str, deployment: Deployment, before: KillSwitch | None, switches_before: int,
               ops: list[list[str]], got: list[dict]) -> None:
    """The end state of one target's race is the one a serial order of the two operations gives, and
    each racer was answered as that order answers."""
    latched = latched_on(target, deployment)
    assert len(latched) <= 1  # never two latched switches for one target
    created = KillSwitch.objects.filter(**on(target, deployment)).count() - switches_before
    trips = [(op[2], answer) for op, answer in zip(ops, got) if op[0] == "trip"]
    lifts = [answer for op, answer in zip(ops, got) if op[0] == "lift"]
    if kind == "trip/trip":
        # Both trips reached the one switch they latched, at the higher level asked for.
        assert created == len(latched) == 1
        assert [answer["pk"] for _, answer in trips] == [latched[0].pk] * 2
        assert latched[0].level == str(max(KillLevel.of(level) for level, _ in trips))
        return
    lifted = KillSwitch.objects.get(pk=before.pk)
    assert lifted.lifted_at is not None
    if kind == "lift/lift":
        # One lift lifted it; the other found nothing latched.
        assert latched == [] and created == 0
        assert sorted(lifts, key=json.dumps) == sorted([{"pk": before.pk, "level": before.level},
                                                        {"refused": NOTHING_TRIPPED}], key=json.dumps)
        return
    [(level, trip)], [lift] = trips, lifts
    assert lift["pk"] == before.pk
    if trip["pk"] == before.pk:  # the trip first (it raised the latched switch), then the lift
        assert latched == [] and created == 0
        assert lifted.level == lift["level"] == str(max(KillLevel.of(level), KillLevel.of(before.level)))
    else:  # the lift first, then the trip latched a switch of its own
        assert [(s.pk, s.level) for s in latched] == [(trip["pk"], level)] and created == 1
        assert lifted.level == before.level


def test_two_processes_tripping_and_lifting_the_same_switches_at_once_leave_one_consistent_switch(racers,
                                                                                                  superuser):
    deployment, (first, second) = racers
    rng = random.Random(0)
    races = {"trip/trip": 0, "trip/lift": 0, "lift/lift": 0}
    for round_ in range(ROUNDS):
        kinds = {target: rng.choice(list(races)) for target in TARGETS}
        before = {target: set_up(kind, target, deployment, superuser, rng) for target, kind in kinds.items()}
        counts = {target: KillSwitch.objects.filter(**on(target, deployment)).count() for target in TARGETS}
        ops = {target: operations(kind, target, rng) for target, kind in kinds.items()}
        # The first racer goes through the targets in one order, the second in the other (the order
        # changing every round); both lines are written before either racer answers, and each was
        # waiting on its stdin, so their operations run at the same time.
        order = list(TARGETS) if round_ % 2 == 0 else list(reversed(TARGETS))
        first.send([ops[target][0] for target in order])
        second.send([ops[target][1] for target in reversed(order)])
        got_first = dict(zip(order, first.results()))
        got_second = dict(zip(reversed(order), second.results()))
        for target, kind in kinds.items():
            races[kind] += 1
            check_race(kind, target, deployment, before[target], counts[target], ops[target],
                       [got_first[target], got_second[target]])
    first.stop()
    second.stop()
    assert min(races.values()) >= 10, races


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def waiting_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def test_a_trip_waits_for_the_row_lock_of_a_bar_in_flight(strategy):
    deployment = make_deployment(strategy)
    locked, release = threading.Event(), threading.Event()
    seen, tripper, tripped = {}, {}, []

    def bar_in_flight():
        # As TradingProcess.trade: the deployment's row locked for the bar's whole transaction, the level
        # read (and the orders checked) under it.
        try:
            with transaction.atomic():
                Deployment.objects.select_for_update().get(pk=deployment.pk)
                seen["before"] = kill_level_for(deployment)
                locked.set()
                assert release.wait(WAIT_SECONDS)
                seen["at_the_end"] = kill_level_for(deployment)
        finally:
            connection.close()

    def trip():
        try:
            tripper["pid"] = backend_pid()
            tripped.append(emergency_stop("global", "flatten", reason="drill"))
        finally:
            connection.close()

    bar = threading.Thread(target=bar_in_flight)
    bar.start()
    assert locked.wait(WAIT_SECONDS)
    trip_thread = threading.Thread(target=trip)
    trip_thread.start()
    try:
        wait_for("the trip to wait for the row lock", lambda: "pid" in tripper and waiting_for_a_lock(tripper["pid"]))
        # Blocked behind the bar: nothing latched yet, for the bar or anyone.
        assert trip_thread.is_alive() and not tripped
        assert not KillSwitch.objects.exists()
    finally:
        release.set()
        bar.join(WAIT_SECONDS)
        trip_thread.join(WAIT_SECONDS)
    assert seen == {"before": KillLevel.NONE, "at_the_end": KillLevel.NONE}  # the whole bar ran before the trip
    assert [switch.level for switch in tripped] == ["flatten"]
    assert kill_level_for(deployment) == KillLevel.FLATTEN


# -- a real trading process ------------------------------------------------------------------------

def trip_and_note(level: str, deployment: Deployment, user) -> dict:
    """Trip at `level` and note, under the row lock the trip took and before it commits, the last order
    written and the positions held: what every bar before the trip left, and nothing of a bar after it."""
    with transaction.atomic():
        emergency_stop("deployment", level, actor=user, deployment=deployment, reason=f"test: {level}")
        noted = Deployment.objects.get(pk=deployment.pk)
        last = Order.objects.filter(deployment=deployment).aggregate(last=Max("id"))["last"] or 0
        held = dict(Position.objects.filter(deployment=deployment).values_list("symbol", "quantity"))
    return {"last_order": last, "positions": held, "bars_done": noted.bars_done}


def orders_after(noted: dict, deployment: Deployment) -> list[Order]:
    return list(Order.objects.filter(deployment=deployment, pk__gt=noted["last_order"]).order_by("pk"))


def growing_orders(noted: dict, orders: list[Order]) -> list[Order]:
    """The orders sent (not refused by the risk check) that did not reduce the position they met: the
    positions at the trip, moved by each order's fills in turn."""
    positions, growing = dict(noted["positions"]), []
    for order in orders:
        if order.refused_by_risk:
            continue
        if not is_reducing(OrderRequest(order.client_order_id, order.symbol, order.side, order.quantity), positions):
            growing.append(order)
        sign = 1.0 if order.side == "buy" else -1.0
        positions[order.symbol] = positions.get(order.symbol, 0.0) + sign * order.filled_quantity
    return growing


def held(deployment: Deployment) -> dict[str, float]:
    return {p.symbol: p.quantity for p in Position.objects.filter(deployment=deployment) if p.quantity}


def test_a_trading_process_sends_only_reducing_orders_after_halt_and_flatten_and_ends_flat(user, trained_session,
                                                                                            trade):
    trade("solo")
    # Paced so that the trips land mid-run, between bars of a running deployment holding positions.
    deployment = deployment_create(session=trained_session, user=user, bars_per_second=10)
    wait_for("positions held", lambda: fresh(deployment).status == "running" and fresh(deployment).bars_done >= 3
             and held(deployment))

    halt = trip_and_note("halt", deployment, user)
    assert halt["positions"] and any(halt["positions"].values())
    wait_for("five bars under HALT", lambda: fresh(deployment).bars_done >= halt["bars_done"] + 5)
    flatten = trip_and_note("flatten", deployment, user)
    wait_for("every position closed", lambda: not held(deployment))
    wait_for("three bars under FLATTEN", lambda: fresh(deployment).bars_done >= flatten["bars_done"] + 3)
    assert fresh(deployment).status == "running"

    under_halt = [o for o in orders_after(halt, deployment) if o.pk <= flatten["last_order"]]
    assert growing_orders(halt, under_halt) == []
    after_flatten = orders_after(flatten, deployment)
    assert after_flatten, "FLATTEN closed the positions with orders"
    assert growing_orders(flatten, after_flatten) == []
    refused = [o for o in orders_after(halt, deployment) if o.refused_by_risk]
    assert all(o.reason.startswith("risk: kill_switch_") for o in refused)
    assert held(deployment) == {}
    assert all(p.quantity == 0 for p in Position.objects.filter(deployment=deployment))
