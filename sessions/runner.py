"""Runs one started session in this process, to the end of its run: the engine's training or
backtest, the session's log file, its heartbeat, and what the end means (completed, paused,
cancelled, queued again to retry, failed). The django-q2 task and `manage.py train --inline` call it.

A training resumes whenever its run directory holds a last checkpoint: after a pause, a retry, or a
worker lost mid-run. Stop and pause requests are read between rollouts (SessionCallback.on_step), so
they take effect within about TRADEMASTER["REQUEST_POLL_SECONDS"] and one rollout, not at the epoch's
end; a run cut short inside an epoch keeps the previous epoch's checkpoint and redoes that epoch.
"""
from __future__ import annotations

import errno
import logging
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import pydantic
from django.conf import settings

from engine.backtest import BacktestReport, backtest
from engine.config import RunConfig
from engine.data import DataError
from engine.device import torch_threads
from engine.training.callbacks import Callback, EpochEnd, Signal, Step, TrainResult, TrainStart
from engine.training.trainer import Trainer
from sessions import services
from sessions.models import SessionStatus, StrategySession
from sessions.monitor import Heartbeat
from sessions.selectors import session_run_dir
from sessions.services.worker import DATABASE_DOWN, patiently, session_requests, training_threads

log = logging.getLogger(__name__)

# They fail the same way however often they are tried: the config, the data file, a missing checkpoint.
PERMANENT_ERRORS = (pydantic.ValidationError, DataError, FileNotFoundError)
# OS errors a retry cannot mend: a path that is wrong, or refuses this process, stays so until a person
# acts (and resumes the failed session). Others (ENOSPC, EIO, a network file system's ETIMEDOUT) may
# pass by themselves, and are retried.
PERMANENT_OS_ERRNOS = frozenset({
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST,
    errno.ENAMETOOLONG, errno.ELOOP,
})
# The loggers a session's log file collects while it runs: the engine's epochs and this app's notes.
LOGGERS = ("engine", "sessions")
STOPPED = "stopped on request after epoch {epoch}"
STOPPED_DURING = "stopped on request during epoch {epoch}, whose work is discarded; {done} epochs done"
_S = SessionStatus


def retryable(error: BaseException) -> bool:
    """Whether a run that raised `error` may pass when tried again (see PERMANENT_OS_ERRNOS)."""
    if isinstance(error, PERMANENT_ERRORS):
        return False
    return not (isinstance(error, OSError) and error.errno in PERMANENT_OS_ERRNOS)


class Abandoned(Exception):
    """The session is no longer this worker's (requeued by the watchdog or an admin): stop, write nothing."""


def execute(session: StrategySession, *, callbacks: list[Callback] | tuple = ()) -> StrategySession:
    """Run `session`, which this process has just started (services.session_claim / session_start).

    `callbacks` join the trainer's (a progress bar). Never raises for the session's own failures:
    they end up as its status and error. Returns the session as its run left it.
    """
    threads = session.threads or training_threads()
    try:
        with _log_file(Path(session.log_path)), Heartbeat(session), torch_threads(threads):
            log.info("session %s, attempt %s: %s on %s with %s threads, pid %s", session.pk, session.attempt,
                     session.session_type, session.device, threads, session.process_id)
            if session.retry_reason:
                log.info("session %s: %s", session.pk, session.retry_reason)
            if session.session_type == StrategySession.SessionType.BACKTEST:
                _backtest(session)
            else:
                _train(session, callbacks)
    except Abandoned:
        log.warning("session %s was taken from this worker; leaving it to its new one", session.pk)
    except Exception as error:
        patiently(services.session_retry_or_fail, session=session, error=traceback.format_exc(),
                  retry=retryable(error), what="the end of the attempt")
    patiently(session.refresh_from_db, what="re-reading the session")
    return session


def _train(session: StrategySession, callbacks) -> None:
    config = RunConfig.model_validate(session.config)
    trainer = Trainer(config, run_dir=session_run_dir(session=session),
                      callbacks=[SessionCallback(session), *callbacks])
    result = trainer.fit(resume=trainer.last_checkpoint.exists())
    summary = _summary(result, config)
    if result.status == "paused":
        done = _finish(session, to=_S.PAUSED, result_data=summary)
    elif result.status == "stopped":
        done = _finish(session, to=_S.CANCELLED, result_data=summary, error=_stopped(result))
    else:
        # "Training sessions end with their honest test report": the best checkpoint, on data that
        # neither training nor the choice of that checkpoint has seen.
        report = backtest(config, checkpoint=trainer.best_checkpoint, market=trainer.parts.market)
        done = _finish(session, to=_S.COMPLETED, result_data={**summary, "report": report},
                       cancel_requested=False, pause_requested=False)
    if done is None:
        raise Abandoned
    if result.interrupted_epoch:
        log.info("session %s: %s during epoch %s; %s epochs done, it resumes at epoch %s", session.pk,
                 done.status, result.interrupted_epoch, result.epochs_done, result.interrupted_epoch)
    else:
        log.info("session %s: %s after epoch %s", session.pk, done.status, result.epochs_done)


def _finish(session: StrategySession, **kwargs) -> StrategySession | None:
    return patiently(services.session_finish, session=session, what="the end of the run", **kwargs)


def _stopped(result: TrainResult) -> str:
    if result.interrupted_epoch:
        return STOPPED_DURING.format(epoch=result.interrupted_epoch, done=result.epochs_done)
    return STOPPED.format(epoch=result.epochs_done)


def _backtest(session: StrategySession) -> None:
    checkpoint = Path(session.checkpoint_path)
    report = backtest_report(session.config, checkpoint=checkpoint)
    result = {"source_session": session.source_id, "checkpoint": str(checkpoint), "report": report}
    done = _finish(session, to=_S.COMPLETED, result_data=result, progress_epoch=1, progress_total=1,
                   cancel_requested=False, pause_requested=False)
    if done is None:
        raise Abandoned


def backtest_report(config: dict, *, checkpoint: Path | None) -> BacktestReport:
    """The engine's test-split report of `config`'s agent with the weights of `checkpoint` (None: as
    the agent starts, which is all a baseline has); FileNotFoundError when the checkpoint is missing."""
    return backtest(RunConfig.model_validate(config), checkpoint=checkpoint, split="test")


def _summary(result: TrainResult, config: RunConfig) -> dict:
    return {
        "epochs_done": result.epochs_done,
        "best_epoch": result.best_epoch,
        "best_value": result.best_value,
        "best_by": config.trainer.best_by,
        "final_metrics": dict(result.history[-1]) if result.history else {},
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
    }


class SessionCallback(Callback):
    """Writes each epoch to the session (metrics, progress, checkpoint, heartbeat) and turns its stop
    and pause requests into the trainer's signals: read between rollouts at most once every
    TRADEMASTER["REQUEST_POLL_SECONDS"] (one small query), and with each epoch's write."""

    def __init__(self, session: StrategySession):
        self.session = session
        self.poll_seconds = float(settings.TRADEMASTER["REQUEST_POLL_SECONDS"])
        self._next_poll = time.monotonic() + self.poll_seconds

    def on_train_start(self, info: TrainStart) -> None:
        log.info("session %s: training epochs %s..%s on %s", self.session.pk, info.start_epoch, info.epochs,
                 info.device)
        if not patiently(services.session_progress, session=self.session, epoch=info.start_epoch - 1,
                         total=info.epochs, what="the start of training"):
            raise Abandoned

    def on_step(self, ctx: Step) -> Signal | None:
        now = time.monotonic()
        if now < self._next_poll:
            return None
        self._next_poll = now + self.poll_seconds
        try:
            requests = session_requests(session=self.session)
        except DATABASE_DOWN as error:
            # The training goes on; the epoch's write waits for the database (patiently).
            log.warning("session %s: could not read its stop and pause requests: %s", self.session.pk, error)
            return None
        if requests is None:
            raise Abandoned
        return self._signal(requests)

    def on_epoch_end(self, ctx: EpochEnd) -> Signal | None:
        requests = patiently(
            services.session_record_epoch, session=self.session, epoch=ctx.epoch, epochs=ctx.epochs,
            metrics=ctx.metrics, checkpoint=ctx.checkpoint, what=f"epoch {ctx.epoch}'s metrics",
        )
        if requests is None:
            raise Abandoned
        return self._signal(requests)

    @staticmethod
    def _signal(requests: services.Requests) -> Signal | None:
        if requests.cancel:
            return Signal.STOP
        if requests.pause:
            return Signal.PAUSE
        return None

    def on_train_end(self, result: TrainResult) -> None:
        written = patiently(services.session_backfill_metrics, session=self.session, history=result.history,
                            what="the metrics a lost attempt left out")
        if written:
            log.info("session %s: wrote the metrics of %s epochs a lost attempt left out", self.session.pk, written)


@contextmanager
def _log_file(path: Path):
    """Collect LOGGERS at INFO into `path` (appended: one file for every attempt of a session)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    except Abandoned:
        raise
    except Exception:
        log.exception("session run failed")
        raise
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()
