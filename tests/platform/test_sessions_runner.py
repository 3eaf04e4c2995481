"""Running a session in this process, as a worker does: the engine's training, its metrics and log,
pause, stop, retries and failures; and the resource sampler."""
import errno
import os

import pytest
import torch
from django_q.models import OrmQ

from common.errors import Conflict
from engine.training.callbacks import Callback, EpochEnd, Step
from sessions import runner, services, tasks
from sessions.models import PerformanceMetric, StrategySession
from sessions.models import SessionStatus as S
from sessions.monitor import GpuProbe, ResourceSampler
from sessions.selectors import session_report
from sessions.services import session_pause, session_requeue, session_resume, session_stop, session_submit
from sessions.services.worker import training_threads
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


class Ask(Callback):
    """Asks `action` (session_stop, session_pause) of the session as its user would, at the first step
    of `epoch`; counts the steps the trainer takes after that."""

    def __init__(self, action, session: StrategySession, user, epoch: int = 2):
        self.action, self.pk, self.user, self.epoch = action, session.pk, user, epoch
        self.asked_at: Step | None = None
        self.steps_after = 0

    def on_step(self, ctx: Step) -> None:
        if self.asked_at is not None:
            self.steps_after += 1
        elif ctx.epoch == self.epoch:
            self.asked_at = ctx
            self.action(session=StrategySession.objects.get(pk=self.pk), user=self.user)


@pytest.fixture
def poll_every_step(settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "REQUEST_POLL_SECONDS": 0}


def test_a_stop_during_an_epoch_takes_effect_at_the_next_step_not_at_the_epochs_end(
    session, user, runs_dir, poll_every_step
):
    stop = Ask(session_stop, session, user)

    done = run_here(session, callbacks=[stop])

    assert stop.asked_at.steps_done < stop.asked_at.steps_total and stop.steps_after == 1  # the step that read it
    assert (done.status, done.progress_epoch) == (S.CANCELLED, 1)
    assert done.error == runner.STOPPED_DURING.format(epoch=2, done=1)
    assert metric_epochs(done) == [1]


def test_a_pause_during_an_epoch_keeps_the_last_whole_epoch_and_resumes_by_redoing_the_interrupted_one(
    session, user, runs_dir, poll_every_step
):
    pause = Ask(session_pause, session, user)

    paused = run_here(session, callbacks=[pause])

    assert pause.steps_after == 1 and (paused.status, paused.progress_epoch) == (S.PAUSED, 1)
    assert paused.checkpoint_path.endswith("last.pt") and metric_epochs(paused) == [1]
    session_resume(session=paused, user=user)
    done = run_here(paused)
    assert (done.status, done.progress_epoch, done.attempt) == (S.COMPLETED, 3, 1)
    assert metric_epochs(done) == [1, 2, 3]
    log = (runs_dir / str(done.pk) / "session.log").read_text()
    assert "paused during epoch 2" in log and "training epochs 2..3" in log


def test_a_training_runs_with_the_threads_it_was_given_and_the_session_says_how_many(session, runs_dir, settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "TRAINING_THREADS": 2}
    before = torch.get_num_threads()
    seen = []

    class Threads(Callback):
        def on_train_start(self, info) -> None:
            seen.append(torch.get_num_threads())

    done = run_here(session, callbacks=[Threads()])

    assert (done.status, done.threads, seen) == (S.COMPLETED, 2, [2])
    assert torch.get_num_threads() == before  # given back: this process trains for others too
    assert "with 2 threads" in (runs_dir / str(done.pk) / "session.log").read_text()


@pytest.mark.parametrize(("cores", "workers", "web", "given", "threads"), [
    (2, 2, 1, None, 1),   # this machine: the two workers and the web share two cores
    (16, 2, 1, None, 7),
    (8, 1, 1, None, 7),
    (4, 8, 1, None, 1),   # never none
    (16, 2, 1, 3, 3),     # TRADEMASTER["TRAINING_THREADS"] decides
])
def test_a_training_gets_its_share_of_the_cores_unless_a_setting_says(settings, cores, workers, web, given, threads):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "TRAINING_THREADS": given, "WEB_CORES": web}
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": workers}

    assert training_threads(cores=cores) == threads


class FlakyDisk(Callback):
    """An I/O error during epoch 2, once: a fault that may pass by itself, so the run is retried."""

    def __init__(self):
        self.failed = False

    def on_step(self, ctx: Step) -> None:
        if ctx.epoch == 2 and not self.failed:
            self.failed = True
            raise OSError(errno.EIO, "Input/output error", "/mnt/flaky/last.pt.tmp")


def test_a_failed_attempt_is_retried_from_its_checkpoint_until_it_succeeds(
    session, runs_dir, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        retried = run_here(session, callbacks=[FlakyDisk()])

    assert (retried.status, retried.attempt) == (S.QUEUED, 2)
    assert "Traceback" in retried.error and "Input/output error" in retried.error
    assert [q.task["args"][0] for q in OrmQ.objects.all()] == [session.pk]  # a slot for the retry
    done = run_here(retried)
    assert (done.status, done.attempt, done.error) == (S.COMPLETED, 2, "")
    assert done.retry_reason == (
        "attempt 2: retried after: OSError: [Errno 5] Input/output error: '/mnt/flaky/last.pt.tmp'"
    )
    assert metric_epochs(done) == [1, 2, 3]
    log = (runs_dir / str(done.pk) / "session.log").read_text().partition("attempt 2")[2]
    assert done.retry_reason in log and "training epochs 2..3" in log  # resumed from epoch 1's checkpoint


def test_a_session_fails_with_its_traceback_once_its_retries_are_spent(session, runs_dir, settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "MAX_RETRIES": 0}

    done = run_here(session, callbacks=[FlakyDisk()])

    assert (done.status, done.attempt) == (S.FAILED, 1)
    assert "Traceback" in done.error and "Input/output error" in done.error


def test_a_checkpoint_folder_that_refuses_writes_fails_at_once_naming_the_path_and_resumes_once_mended(
    session, user, runs_dir, django_capture_on_commit_callbacks
):
    class BlockCheckpoints(Callback):
        # After epoch 1's checkpoint, a folder takes the place of the next one's temporary file: the
        # write is refused whoever runs the test (root ignores a read-only folder's permissions).
        def on_epoch_end(self, ctx: EpochEnd) -> None:
            if ctx.epoch == 1:
                (ctx.checkpoint.parent / "last.pt.tmp").mkdir()

    failed = run_here(session, callbacks=[BlockCheckpoints()])

    blocked = runs_dir / str(session.pk) / "last.pt.tmp"
    assert (failed.status, failed.attempt, failed.progress_epoch) == (S.FAILED, 1, 1)  # no retry spent on it
    assert failed.error.splitlines()[-1] == (
        f"engine.training.trainer.CheckpointError: cannot write the checkpoint {blocked.parent / 'last.pt'}: "
        f"[Errno 21] Is a directory: '{blocked}'"
    )

    blocked.rmdir()
    with django_capture_on_commit_callbacks(execute=True):
        resumed = session_resume(session=failed, user=user)
    assert (resumed.status, resumed.attempt) == (S.QUEUED, 2)
    assert [q.task["args"][0] for q in OrmQ.objects.all()] == [session.pk]
    done = run_here(resumed)

    assert (done.status, done.attempt, done.progress_epoch) == (S.COMPLETED, 2, 3), done.error
    assert metric_epochs(done) == [1, 2, 3]
    assert done.retry_reason.startswith("attempt 2: retried after: resumed by ada; attempt 1 had failed: ")
    assert "training epochs 2..3" in (runs_dir / str(done.pk) / "session.log").read_text().partition("attempt 2")[2]


def test_a_failed_session_without_a_checkpoint_is_not_resumed(session, user, runs_dir):
    StrategySession.objects.filter(pk=session.pk).update(config={**session.config, "dataset": "/no/such/file.csv"})
    failed = run_here(StrategySession.objects.get(pk=session.pk))
    assert failed.status == S.FAILED

    with pytest.raises(Conflict, match=f"session {session.pk} failed before its first checkpoint"):
        session_resume(session=failed, user=user)


def test_errors_that_may_pass_by_themselves_are_retried_and_the_others_are_not():
    assert runner.retryable(OSError(errno.ENOSPC, "No space left on device"))
    assert runner.retryable(OSError(errno.EIO, "Input/output error"))
    assert runner.retryable(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert not runner.retryable(PermissionError(errno.EACCES, "Permission denied"))
    assert not runner.retryable(OSError(errno.EROFS, "Read-only file system"))
    assert not runner.retryable(FileNotFoundError(errno.ENOENT, "No such file or directory"))


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
