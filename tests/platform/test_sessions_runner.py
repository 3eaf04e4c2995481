"""Running a session in this process, as a worker does: the engine's training, its metrics and log,
pause, stop, retries and failures; and the resource sampler."""
import os

import pytest
from django_q.models import OrmQ

from sessions import runner, services, tasks
from sessions.models import PerformanceMetric, StrategySession
from sessions.models import SessionStatus as S
from sessions.monitor import GpuProbe, ResourceSampler
from sessions.selectors import session_report
from sessions.services import session_pause, session_requeue, session_resume, session_stop, session_submit
from tests.platform.session_helpers import run_here

pytestmark = pytest.mark.django_db

EPOCH_METRICS = ("train/loss", "train/reward", "eval/sharpe", "eval/total_return", "time/epoch_seconds")


@pytest.fixture
def session(tiny_strategy, user) -> StrategySession:
    return session_submit(strategy=tiny_strategy, user=user, enqueue=False)


def metric_epochs(session: StrategySession, name: str = "train/loss") -> list[int]:
    return list(session.metrics.filter(metric_type=name).order_by("epoch").values_list("epoch", flat=True))


def test_a_training_runs_to_completion_with_its_metrics_log_and_test_report(session, runs_dir):
    done = run_here(session)

    assert (done.status, done.progress_epoch, done.progress_total, done.attempt, done.error) == (
        S.COMPLETED, 3, 3, 1, "",
    )
    for name in EPOCH_METRICS:
        assert metric_epochs(done, name) == [1, 2, 3], name
    assert not done.metrics.filter(metric_type="epoch").exists()  # the epoch is the rows' own column
    result = done.result_data
    assert result["epochs_done"] == 3 and result["best_epoch"] in (1, 2, 3) and result["best_by"] == "sharpe"
    assert result["final_metrics"]["epoch"] == 3
    report = session_report(session=done)
    assert report["metrics"] == result["report"]["metrics"] and report["split"] == "test"
    assert {"sharpe", "total_return", "max_drawdown"} <= set(report["metrics"]) <= set(report["benchmark_metrics"]) | {
        "turnover", "turnover_total", "fees"}
    run_dir = runs_dir / str(done.pk)
    assert done.checkpoint_path == str(run_dir / "last.pt") and (run_dir / "best.pt").is_file()
    log = (run_dir / "session.log").read_text()
    assert done.log_path == str(run_dir / "session.log")
    assert "attempt 1" in log and "epoch 3:" in log and "completed after epoch 3" in log


def test_a_paused_training_resumes_from_its_checkpoint_and_writes_each_epoch_once(session, user, runs_dir):
    started = services.session_start(session=session, process_id=4242, host="test-host")
    session_pause(session=started, user=user)  # read at the end of epoch 1

    paused = runner.execute(started)
    assert (paused.status, paused.progress_epoch, paused.progress_total) == (S.PAUSED, 1, 3)
    assert paused.checkpoint_path.endswith("last.pt") and session_report(session=paused) is None

    session_resume(session=paused, user=user)
    done = run_here(paused)

    assert (done.status, done.progress_epoch, done.attempt) == (S.COMPLETED, 3, 1)
    assert metric_epochs(done) == [1, 2, 3]
    assert "training epochs 2..3" in (runs_dir / str(done.pk) / "session.log").read_text()


def test_a_stopped_training_is_cancelled_at_the_end_of_its_epoch(session, user, runs_dir):
    started = services.session_start(session=session, process_id=4242, host="test-host")
    session_stop(session=started, user=user)

    done = runner.execute(started)

    assert (done.status, done.progress_epoch, done.error) == (S.CANCELLED, 1, runner.STOPPED.format(epoch=1))
    assert metric_epochs(done) == [1]


def test_a_failed_attempt_is_retried_from_its_checkpoint_until_it_succeeds(
    session, runs_dir, django_capture_on_commit_callbacks
):
    # The run directory cannot be created: a file stands in its place.
    runs_dir.mkdir()
    blocker = runs_dir / str(session.pk)
    blocker.write_text("not a directory")

    with django_capture_on_commit_callbacks(execute=True):
        retried = run_here(session)

    assert (retried.status, retried.attempt) == (S.QUEUED, 2)
    assert "Traceback" in retried.error and "FileExistsError" in retried.error
    assert [q.task["args"][0] for q in OrmQ.objects.all()] == [session.pk]  # a slot for the retry
    blocker.unlink()
    done = run_here(retried)
    assert (done.status, done.attempt, done.error) == (S.COMPLETED, 2, "")


def test_a_session_fails_with_its_traceback_once_its_retries_are_spent(session, runs_dir, settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "MAX_RETRIES": 0}
    runs_dir.mkdir()
    (runs_dir / str(session.pk)).write_text("not a directory")

    done = run_here(session)

    assert (done.status, done.attempt) == (S.FAILED, 1)
    assert "Traceback" in done.error and "FileExistsError" in done.error


def test_a_bad_dataset_fails_at_once_without_retrying(session, runs_dir):
    StrategySession.objects.filter(pk=session.pk).update(config={**session.config, "dataset": "/no/such/file.csv"})
    session.refresh_from_db()

    done = run_here(session)

    assert (done.status, done.attempt) == (S.FAILED, 1)
    assert "/no/such/file.csv" in done.error


def test_a_worker_whose_session_was_requeued_behind_its_back_writes_nothing(session, runs_dir):
    started = services.session_start(session=session, process_id=4242, host="test-host")
    session_requeue(session=StrategySession.objects.get(pk=session.pk), error="taken away")

    runner.execute(started)

    session.refresh_from_db()
    assert (session.status, session.attempt, session.error) == (S.QUEUED, 2, "taken away")
    assert not PerformanceMetric.objects.exists()


def test_a_backtest_session_reports_its_sources_best_checkpoint(session, tiny_strategy, user, runs_dir):
    training = run_here(session)

    backtest = run_here(session_submit(strategy=tiny_strategy, user=user, session_type="backtest", source=training))

    assert (backtest.status, backtest.progress_epoch, backtest.progress_total) == (S.COMPLETED, 1, 1)
    assert backtest.result_data["source_session"] == training.pk
    # The same weights on the same test split: the training's own report, number for number.
    assert session_report(session=backtest)["metrics"] == session_report(session=training)["metrics"]


# ------------------------------------------------------------------------------------ resource usage

def test_the_resource_sampler_reads_this_process():
    sampler = ResourceSampler("cpu")
    sum(i * i for i in range(200_000))  # something to measure

    sample = sampler.sample()

    assert sample["cpu_percent"] >= 0 and sample["memory_mb"] > 10 and sample["disk_io_mb"] >= 0
    assert (sample["gpu_percent"], sample["gpu_memory_mb"]) == (None, None)
    sampler.close()


def test_without_an_nvidia_driver_gpu_readings_are_empty_not_an_error():
    # This machine has pynvml but no driver: nvmlInit() raises, and the probe must not.
    probe = GpuProbe("cuda:0")

    assert probe.read(os.getpid()) == (None, None)
    probe.close()


# ------------------------------------------------------------------------------------ the task itself

def test_the_task_runs_the_most_urgent_queued_session_and_ends_when_none_is_left(tiny_strategy, user, runs_dir):
    mine = session_submit(strategy=tiny_strategy, user=user, enqueue=False)
    urgent = session_submit(strategy=tiny_strategy, user=user, priority=1, enqueue=False)
    session_stop(session=mine, user=user)  # cancelled while queued: its slot runs the other one

    assert tasks.run_session(mine.pk) == f"session {urgent.pk}: completed"
    assert tasks.run_session(urgent.pk) == "nothing queued"
