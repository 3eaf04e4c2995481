"""A database that stops answering for a while: the worker waits for it with a backoff, says so in the
session's log, and loses neither the epoch nor its resource samples.

The outage is staged at the connection level, not by stopping the server: the PostgreSQL of the test
run is shared with other runs, and an in-memory SQLite database cannot be stopped at all. So a
wrapper on this thread's connection (connection.execute_wrapper) refuses statements with the
OperationalError a dropped connection raises, until it has refused a given number; the code under
test meets the same exception a real outage raises, through Django's own cursor.
"""
import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from engine.training.callbacks import Callback, Step
from sessions.models import ResourceUsage
from sessions.models import SessionStatus as S
from sessions.monitor import Heartbeat, ResourceSampler
from sessions.services import session_start, session_submit
from sessions.services.worker import DATABASE_BACK, DATABASE_WAITING, patiently
from tests.platform.session_helpers import run_here

pytestmark = pytest.mark.django_db

DROPPED = "server closed the connection unexpectedly"
# Savepoints are the transaction a test runs in, not the worker's statements: refusing them would
# break the test's transaction, which a real outage would end anyway.
SAVEPOINTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


class Outage:
    """Refuses this connection's next `statements` statements once started."""

    def __init__(self, statements: int):
        self.left = statements
        self.started = False
        self.refused: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        if self.started and self.left and not sql.lstrip().upper().startswith(SAVEPOINTS):
            self.left -= 1
            self.refused.append(sql)
            raise OperationalError(DROPPED)
        return execute(sql, params, many, context)


@pytest.fixture
def quick_backoff(settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "DATABASE_BACKOFF_SECONDS": (0.01, 0.02),
                            "REQUEST_POLL_SECONDS": 3600}


def test_an_outage_at_an_epoch_boundary_is_waited_out_and_the_epoch_written(
    tiny_strategy, user, runs_dir, quick_backoff
):
    session = session_submit(strategy=tiny_strategy, user=user, enqueue=False)
    outage = Outage(statements=3)

    class DatabaseGoesDown(Callback):
        def on_step(self, ctx: Step) -> None:
            outage.started = outage.started or ctx.epoch == 2  # down from epoch 2 until 3 statements failed

    with connection.execute_wrapper(outage):
        done = run_here(session, callbacks=[DatabaseGoesDown()])

    assert outage.left == 0 and len(outage.refused) == 3
    assert (done.status, done.attempt, done.progress_epoch) == (S.COMPLETED, 1, 3), done.error
    assert sorted(set(done.metrics.values_list("epoch", flat=True))) == [1, 2, 3]
    log = (runs_dir / str(done.pk) / "session.log").read_text()
    waiting = DATABASE_WAITING.split("{")[0] + "epoch 2's metrics"
    assert log.count(waiting) == 3 and DROPPED in log
    assert DATABASE_BACK.format(what="epoch 2's metrics", waited=0).split(" after")[0] in log


def test_patiently_gives_up_after_the_wait_the_settings_allow(settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "DATABASE_BACKOFF_SECONDS": (0.01, 0.01),
                            "DATABASE_WAIT_SECONDS": 0}
    calls = []

    def refused():
        calls.append(1)
        raise OperationalError(DROPPED)

    with pytest.raises(OperationalError):
        patiently(refused, what="a write")
    assert len(calls) == 1


def test_resource_samples_taken_while_the_database_is_away_are_written_once_it_is_back(tiny_strategy, user):
    session = session_start(session=session_submit(strategy=tiny_strategy, user=user, enqueue=False),
                            process_id=4242, host="test-host")
    heartbeat, sampler = Heartbeat(session), ResourceSampler("cpu")
    outage = Outage(statements=2)
    outage.started = True

    with connection.execute_wrapper(outage):
        taken = []
        for _ in range(2):
            heartbeat.take_sample(sampler)
            taken.append(timezone.now())
            with pytest.raises(OperationalError):
                heartbeat.write_samples(sampler)
        assert len(heartbeat.pending) == 2 and not ResourceUsage.objects.exists()
        heartbeat.take_sample(sampler)
        heartbeat.write_samples(sampler)  # the database answers again

    rows = list(ResourceUsage.objects.filter(session=session).order_by("id"))
    assert len(rows) == 3 and not heartbeat.pending
    # Dated when taken, not when written: the first two were written after the third was taken.
    assert rows[0].recorded_at <= taken[0] < rows[1].recorded_at <= taken[1] < rows[2].recorded_at
    sampler.close()
