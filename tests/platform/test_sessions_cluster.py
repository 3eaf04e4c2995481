"""Sessions run by a real `manage.py qcluster` (worker processes, the ORM broker, the watchdog) on the
test database: completion, pause and resume, stop, and a worker killed with kill -9.

PostgreSQL only (marker `postgres`): the cluster is another process, and pytest-django's SQLite test
database lives in this one's memory.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from sessions.models import ResourceUsage, StrategySession
from sessions.models import SessionStatus as S
from sessions.services import session_pause, session_resume, session_stop, session_submit, this_host

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60
NEEDS_POSTGRES = "the cluster tests need PostgreSQL: run with DATABASE_URL=postgres://..., or -m 'not postgres'"


@pytest.fixture
def runs(settings, tmp_path) -> Path:
    directory = tmp_path / "runs"
    settings.TRADEMASTER = {**settings.TRADEMASTER, "RUNS_DIR": directory, "MAX_SESSIONS_PER_USER": 10}
    return directory


@pytest.fixture
def cluster(transactional_db, runs, tmp_path):
    """A `manage.py qcluster` (two workers) on this test's database; killed, with all its processes,
    when the test ends."""
    assert connection.vendor == "postgresql", NEEDS_POSTGRES
    db = connection.settings_dict
    host, port = db["HOST"] or "localhost", db["PORT"] or 5432
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}:{port}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.platform.cluster_settings",
        "DATABASE_URL": url,
        "TRADEMASTER_TEST_RUNS_DIR": str(runs),
    }
    log_path = tmp_path / "qcluster.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers go down with it
        )
    try:
        yield process
    finally:
        _stop(process)
        print(log_path.read_text()[-5000:])  # shown when the test fails


def _stop(process: subprocess.Popen) -> None:
    # SIGKILL to the whole group at once: a graceful stop would wait for running trainings to end, and
    # PostgreSQL ends the connections of killed clients by itself.
    os.killpg(os.getpgid(process.pid), signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture
def train(user, make_strategy):
    def submit(epochs: int) -> StrategySession:
        strategy = make_strategy(user, name=f"tiny {epochs}", epochs=epochs)
        return session_submit(strategy=strategy, user=user)

    return submit


def wait_for(what: str, predicate, timeout: float = WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout} s")


def fresh(session: StrategySession) -> StrategySession:
    return StrategySession.objects.get(pk=session.pk)


def reaches(session: StrategySession, *statuses: str):
    return lambda: (s := fresh(session)).status in statuses and s


def training_after_epoch(session: StrategySession, epoch: int):
    return lambda: (s := fresh(session)).status == S.RUNNING and s.progress_epoch >= epoch and s


def loss_epochs(session: StrategySession) -> list[int]:
    return sorted(session.metrics.filter(metric_type="train/loss").values_list("epoch", flat=True))


def test_a_submitted_training_is_run_by_a_worker_to_completion(cluster, train, runs):
    session = train(epochs=4)

    done = wait_for("completed training", reaches(session, S.COMPLETED, S.FAILED))

    assert (done.status, done.progress_epoch, done.progress_total, done.attempt) == (S.COMPLETED, 4, 4, 1), done.error
    assert done.worker_host == this_host() and done.process_id not in (None, os.getpid())
    assert loss_epochs(done) == [1, 2, 3, 4]
    assert set(done.result_data["report"]["metrics"]) >= {"sharpe", "total_return"}
    assert "completed after epoch 4" in (runs / str(done.pk) / "session.log").read_text()
    samples = ResourceUsage.objects.filter(session=done)
    assert samples.exists()
    assert all(s.cpu_percent >= 0 and s.memory_mb > 0 and s.gpu_percent is None for s in samples)


def test_a_training_paused_in_the_cluster_resumes_from_its_checkpoint(cluster, train, user, runs):
    session = train(epochs=10)
    wait_for("first epoch", training_after_epoch(session, 1))

    session_pause(session=fresh(session), user=user)
    paused = wait_for("pause", reaches(session, S.PAUSED))
    assert 1 <= paused.progress_epoch < 10 and (runs / str(session.pk) / "last.pt").is_file()
    assert loss_epochs(paused) == list(range(1, paused.progress_epoch + 1))

    session_resume(session=paused, user=user)
    done = wait_for("completed training", reaches(session, S.COMPLETED, S.FAILED))

    assert (done.status, done.progress_epoch, done.attempt) == (S.COMPLETED, 10, 1), done.error
    assert loss_epochs(done) == list(range(1, 11))  # each epoch once: resumed, not restarted
    assert f"training epochs {paused.progress_epoch + 1}..10" in (runs / str(done.pk) / "session.log").read_text()


def test_a_training_stopped_in_the_cluster_is_cancelled(cluster, train, user):
    session = train(epochs=10)
    wait_for("first epoch", training_after_epoch(session, 1))

    session_stop(session=fresh(session), user=user)
    stopped = wait_for("stop", reaches(session, S.CANCELLED, S.COMPLETED))

    assert stopped.status == S.CANCELLED and stopped.progress_epoch < 10
    assert stopped.error.startswith("stopped on request")


def test_a_worker_killed_mid_training_is_noticed_and_the_session_resumed_from_its_checkpoint(cluster, train, runs):
    session = train(epochs=10)
    running = wait_for("first epoch", training_after_epoch(session, 1))

    os.kill(running.process_id, signal.SIGKILL)
    killed_at = time.monotonic()
    requeued = wait_for("recovery", lambda: (s := fresh(session)).attempt == 2 and s)
    noticed_after = time.monotonic() - killed_at
    done = wait_for("completed training", reaches(session, S.COMPLETED, S.FAILED))

    assert noticed_after < WAIT_SECONDS
    assert requeued.status in (S.QUEUED, S.RUNNING, S.COMPLETED)
    assert (done.status, done.attempt, done.progress_epoch) == (S.COMPLETED, 2, 10), done.error
    assert done.process_id != running.process_id
    assert loss_epochs(done) == list(range(1, 11))
    log = (runs / str(done.pk) / "session.log").read_text()
    assert "attempt 2" in log and "training epochs 1..10" not in log.split("attempt 2")[1]  # it resumed
