"""Real `manage.py trade` processes on the test database: two split the deployments between them and
never run one twice; one killed with kill -9 mid-run is taken over by the other, which reconciles and
continues with no order doubled and no fill lost: the interrupted deployment's record is the
uninterrupted one's, fill for fill, and both end with the backtest's equity curve.

PostgreSQL only (marker `postgres`): the processes are others, and pytest-django's SQLite test database
lives in this one's memory.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from django.db import connection

from trading.models import Deployment, DeploymentEvent, EquityPoint, Fill, Order, TradingWorker
from trading.services import deployment_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 120


@pytest.fixture
def trade(transactional_db, trained_session, runs_dir, deployments_dir, tmp_path):
    """start(name) -> a new `manage.py trade --owner name` on this test's database, once it says it is
    ready. Every one started is killed when the test ends."""
    assert connection.vendor == "postgresql", "the trading-process tests need PostgreSQL"
    db = connection.settings_dict
    host, port = db["HOST"] or "localhost", db["PORT"] or 5432
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}:{port}/{db['NAME']}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.platform.trading_settings", "DATABASE_URL": url,
           "TRADEMASTER_TEST_RUNS_DIR": str(runs_dir), "TRADEMASTER_TEST_DEPLOYMENTS_DIR": str(deployments_dir)}
    started: list[tuple[subprocess.Popen, Path]] = []

    def start(name: str) -> subprocess.Popen:
        log_path = tmp_path / f"trade-{name}.log"
        log = log_path.open("w")
        process = subprocess.Popen([sys.executable, "manage.py", "trade", "--owner", name], cwd=ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        started.append((process, log_path))
        # Ready when it says so on stdout (after its first look at the deployments).
        assert process.stdout.readline().startswith(f"trading process {name} ready"), log_path.read_text()
        wait_for(f"{name} to register", lambda: TradingWorker.objects.filter(owner=name).exists())
        return process

    yield start
    for process, log_path in started:
        if process.poll() is None:
            os.killpg(os.getpgid(process.pid), signal.SIGKILL)
            process.wait(timeout=10)
        print(log_path.read_text()[-5000:])


def wait_for(what: str, predicate, timeout: float = WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout} s")


def fresh(deployment: Deployment) -> Deployment:
    return Deployment.objects.get(pk=deployment.pk)


def record(deployment: Deployment) -> dict:
    return {
        "orders": list(Order.objects.filter(deployment=deployment).order_by("bar_index", "symbol").values_list(
            "bar_index", "symbol", "side", "quantity", "status", "filled_quantity")),
        "fills": list(Fill.objects.filter(deployment=deployment).order_by("time", "symbol").values_list(
            "time", "symbol", "side", "quantity", "price", "fee")),
        "equity": list(EquityPoint.objects.filter(deployment=deployment).values_list("bar_index", "equity")),
    }


def test_two_processes_split_the_deployments_and_one_killed_mid_run_is_taken_over_without_a_doubled_order(
        user, trained_session, trade):
    first = trade("first")
    trade("second")
    # Replays paced so that the kill lands mid-run; each bar is one transaction either way.
    interrupted = deployment_create(session=trained_session, user=user, bars_per_second=40)
    uninterrupted = deployment_create(session=trained_session, user=user, bars_per_second=40)

    both_running = wait_for("both deployments running", lambda: all(
        fresh(d).status == "running" and fresh(d).bars_done >= 10 for d in (interrupted, uninterrupted)))
    assert both_running
    holders = {fresh(d).lease_owner for d in (interrupted, uninterrupted)}
    assert holders == {"first", "second"}  # split, one each
    if fresh(interrupted).lease_owner != "first":
        interrupted, uninterrupted = uninterrupted, interrupted

    bars_before = fresh(interrupted).bars_done
    os.killpg(os.getpgid(first.pid), signal.SIGKILL)
    first.wait(timeout=10)

    taken = wait_for("the takeover", lambda: fresh(interrupted).lease_owner == "second" and fresh(interrupted))
    assert taken.status in ("running", "stopped")
    for deployment in (interrupted, uninterrupted):
        wait_for(f"deployment {deployment.pk} to finish", lambda d=deployment: fresh(d).status == "stopped")
    done = fresh(interrupted)
    assert done.error == "the replay reached the end of its period"
    assert bars_before < done.bars_done
    assert DeploymentEvent.objects.filter(deployment=done, message__startswith="taken over by second").exists()

    # The killed run's record is the uninterrupted run's: no order doubled, no fill lost.
    got, expected = record(interrupted), record(uninterrupted)
    assert len(got["orders"]) == len(expected["orders"]) > 0
    assert got == expected
    assert done.bars_done == len(got["equity"])

    curve = np.array([equity for _, equity in got["equity"]])
    report = np.array([point["value"] for point in trained_session.result_data["report"]["equity_curve"]])
    np.testing.assert_allclose(curve, report, rtol=1e-9, atol=0)
