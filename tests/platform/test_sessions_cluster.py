"""Sessions run by a real `manage.py qcluster` (worker processes, the ORM broker, the watchdog) on the
test database: completion, pause and resume, stop (inside a long epoch too), a worker killed with
kill -9, and a whole cluster killed while a session waited with its task already taken.

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
from django.utils import timezone
from django_q.models import OrmQ

from sessions import runner
from sessions.models import ResourceUsage, StrategySession
from sessions.models import SessionStatus as S
from sessions.services import session_pause, session_resume, session_stop, session_submit, this_host
from strategies.services import strategy_create
from tests.platform.session_helpers import PM, tiny

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
def qcluster(transactional_db, runs, tmp_path):
    """start() -> a new `manage.py qcluster` (two workers) on this test's database. Every one started
    is killed, with all its processes, when the test ends."""
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
    started: list[tuple[subprocess.Popen, Path]] = []

    def start() -> subprocess.Popen:
        log_path = tmp_path / f"qcluster-{len(started) + 1}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the workers go down with it
            )
        started.append((process, log_path))
        return process

    yield start
    for process, log_path in started:
        if process.returncode is None:
            kill(process)
        print(log_path.read_text()[-5000:])  # shown when the test fails


@pytest.fixture
def cluster(qcluster):
    return qcluster()


def kill(process: subprocess.Popen) -> None:
    """kill -9 the whole cluster at once: a graceful stop would wait for running trainings to end, and
    PostgreSQL ends the connections of killed clients by itself."""
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
    log = (runs / str(done.pk) / "session.log").read_text()
    assert "completed after epoch 4" in log and done.threads >= 1 and f"with {done.threads} threads" in log
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
    assert "attempt 2" in log and "training epochs 1..10" not in log.partition("attempt 2")[2]  # it resumed
    assert done.retry_reason.startswith("attempt 2: retried after: its worker process")
    assert done.retry_reason in log


def test_a_stop_takes_effect_within_seconds_in_the_middle_of_a_long_epoch(cluster, user, builtin_dataset):
    # An epoch of fifty million steps: hours on this machine, so only a stop inside it can end the run.
    params = {**tiny(2), "trainer": {**tiny(2)["trainer"], "steps_per_epoch": 50_000_000}}
    strategy = strategy_create(owner=user, name="long epochs", task=PM, agent="ppo", dataset=builtin_dataset,
                               params=params)
    session = session_submit(strategy=strategy, user=user)
    wait_for("training under way", lambda: (s := fresh(session)).status == S.RUNNING and s.progress_total == 2)

    asked = time.monotonic()
    session_stop(session=fresh(session), user=user)
    stopped = wait_for("stop", reaches(session, S.CANCELLED, S.COMPLETED, S.FAILED))
    print(f"stopped {time.monotonic() - asked:.1f} s after the request, in the middle of epoch 1")

    assert (stopped.status, stopped.progress_epoch) == (S.CANCELLED, 0)
    assert stopped.error == runner.STOPPED_DURING.format(epoch=1, done=0)


def slot_taken(session: StrategySession) -> bool:
    """Whether the cluster has taken `session`'s task from the ORM broker (locked until Q_CLUSTER["retry"])."""
    task_id = fresh(session).task_id
    return any(row.task_id() == task_id and row.lock > timezone.now() for row in OrmQ.objects.all())


def test_a_session_whose_slot_a_killed_cluster_had_taken_runs_when_the_cluster_starts_again(qcluster, train, user):
    first = qcluster()
    busy = [train(epochs=1000), train(epochs=999)]  # both workers
    for session in busy:
        wait_for("both workers busy", reaches(session, S.RUNNING))
    waiting = train(epochs=2)
    wait_for("its slot taken while both workers are busy", lambda: slot_taken(waiting))

    kill(first)
    for session in busy:  # so that the cluster started again has its workers for the one that waited
        session_stop(session=fresh(session), user=user)
    assert fresh(waiting).status == S.QUEUED
    qcluster()
    done = wait_for("the waiting session run", reaches(waiting, S.COMPLETED, S.FAILED))

    assert (done.status, done.attempt, done.progress_epoch) == (S.COMPLETED, 1, 2), done.error
    assert loss_epochs(done) == [1, 2]  # run once
    assert {fresh(session).status for session in busy} == {S.CANCELLED}
