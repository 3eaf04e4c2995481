"""The trainer: epochs over the train split, an evaluation on the valid split after each, the best
checkpoint kept, callbacks told, pause/stop honoured between rollouts and at epoch boundaries, resume
from a checkpoint.

Determinism: every epoch is seeded from (config seed, epoch number) and an agent's epoch is a pure
function of its weights, optimizer state and that seed (engine.agents.base.Agent.learn_epoch). So the
same seed on the CPU gives the same metrics run after run, and a run stopped after epoch k and resumed
from its checkpoint ends exactly where an uninterrupted run does. A run stopped or paused inside epoch
k discards that epoch's partial work and keeps the checkpoint of epoch k - 1: resumed, it does epoch k
again from its start, with the same seed, and so still ends where an uninterrupted run does.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.assembly import RunParts, assemble
from engine.backtest.backtester import evaluate
from engine.backtest.report import BacktestReport
from engine.backtest.run import report_of
from engine.config import RunConfig
from engine.data.market import MarketData
from engine.training.callbacks import (
    Callback,
    EpochEnd,
    Signal,
    Step,
    TrainResult,
    TrainStart,
    decision,
)

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"
NO_CHECKPOINT = "no checkpoint to resume from in {run_dir}"
MARKET_WITH_PARTS = "market is for assembling a RunConfig; assembled parts have theirs"
CHECKPOINT_UNWRITABLE = "cannot write the checkpoint {path}: {error}"
INTERRUPTED = "epoch %d %s after %d of %d steps; the last checkpoint is of epoch %d"
_ENDED = {Signal.STOP: "stopped", Signal.PAUSE: "paused"}


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed seed per epoch: nearby (seed, epoch) pairs give unrelated streams."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class CheckpointError(OSError):
    """A checkpoint could not be written: names the checkpoint and the OS error, and keeps its errno
    (EACCES or EROFS will not pass by themselves; ENOSPC or EIO may)."""

    def __init__(self, path: Path, error: OSError):
        super().__init__(error.errno, CHECKPOINT_UNWRITABLE.format(path=path, error=error))
        self.path = path

    def __str__(self) -> str:
        return self.strerror


class _Interrupted(Exception):
    """Raised through the agent's learn_epoch when the callbacks ask to stop or pause mid-epoch."""

    def __init__(self, signal: Signal, step: Step):
        super().__init__(signal.value)
        self.signal, self.step = signal, step


@dataclass
class _Progress:
    """Where a run stands between epochs: what its checkpoint's `extra` holds."""

    start_epoch: int = 1
    best_epoch: int | None = None
    best_value: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Trains the parts of one run (engine.assembly.assemble).

    trainer = Trainer(config, run_dir="runs/42", callbacks=[History()])
    result = trainer.fit()            # or fit(resume=True) after a pause
    report = trainer.backtest()       # the best checkpoint on the test split
    """

    def __init__(self, run: RunConfig | RunParts, *, run_dir: str | Path, market: MarketData | None = None,
                 callbacks: list[Callback] | tuple = ()):
        """`run`: the assembled parts, or a RunConfig to assemble them from (on `market` when given)."""
        if isinstance(run, RunParts):
            if market is not None:
                raise TypeError(MARKET_WITH_PARTS)
            self.parts = run
        else:
            self.parts = assemble(run, market=market)
        self.config = self.parts.config
        self.agent = self.parts.agent
        self.run_dir = Path(run_dir)
        self.callbacks = list(callbacks)

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / LAST

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / BEST

    def _score(self, metrics: dict[str, float]) -> float:
        value = metrics.get(f"eval/{self.config.trainer.best_by}", float("nan"))
        return value if math.isfinite(value) else -math.inf

    def fit(self, *, resume: bool = False) -> TrainResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        progress = self._resumed() if resume else _Progress()
        epochs = self.config.trainer.epochs if self.agent.trainable else 1
        for cb in self.callbacks:
            cb.on_train_start(TrainStart(epochs=epochs, start_epoch=progress.start_epoch, run_dir=self.run_dir,
                                         device=str(self.parts.device)))
        status, interrupted = "completed", None
        for epoch in range(progress.start_epoch, epochs + 1):
            try:
                metrics = self._run_epoch(epoch, epochs)
            except _Interrupted as stop:
                status, interrupted = _ENDED[stop.signal], epoch
                log.info(INTERRUPTED, epoch, status, stop.step.steps_done, stop.step.steps_total, epoch - 1)
                break
            signal = self._end_epoch(epoch, epochs, metrics, progress)
            if epoch < epochs and signal is not Signal.CONTINUE:
                status = _ENDED[signal]
                break
        history = progress.history
        result = TrainResult(
            status=status,
            epochs_done=int(history[-1]["epoch"]) if history else progress.start_epoch - 1,
            interrupted_epoch=interrupted,
            best_epoch=progress.best_epoch,
            best_value=progress.best_value,
            best_checkpoint=self.best_checkpoint if self.best_checkpoint.exists() else None,
            last_checkpoint=self.last_checkpoint if self.last_checkpoint.exists() else None,
            history=history,
        )
        for cb in self.callbacks:
            cb.on_train_end(result)
        return result

    def _resumed(self) -> _Progress:
        if not self.last_checkpoint.exists():
            raise FileNotFoundError(NO_CHECKPOINT.format(run_dir=self.run_dir))
        extra = self.agent.load(self.last_checkpoint)["extra"]
        return _Progress(start_epoch=extra["epoch"] + 1, best_epoch=extra["best_epoch"],
                         best_value=extra["best_value"], history=extra["history"])

    def _end_epoch(self, epoch: int, epochs: int, metrics: dict[str, float], progress: _Progress) -> Signal:
        """Keep the epoch (history, best, checkpoints), tell the callbacks, and return what they ask."""
        progress.history.append(metrics)
        score = self._score(metrics)
        is_best = progress.best_value is None or score > progress.best_value
        if is_best:
            progress.best_epoch, progress.best_value = epoch, score
        extra = {"epoch": epoch, "best_epoch": progress.best_epoch, "best_value": progress.best_value,
                 "history": progress.history, "config": self.config.model_dump(mode="json")}
        self._write_checkpoint(epoch, extra, is_best=is_best)
        ctx = EpochEnd(epoch=epoch, epochs=epochs, metrics=metrics, is_best=is_best, best_epoch=progress.best_epoch,
                       best_value=progress.best_value, checkpoint=self.last_checkpoint)
        return decision([cb.on_epoch_end(ctx) for cb in self.callbacks])

    def _write_checkpoint(self, epoch: int, extra: dict, *, is_best: bool) -> None:
        try:
            self.agent.save(self.last_checkpoint, epoch=epoch, extra=extra)
        except OSError as error:
            raise CheckpointError(self.last_checkpoint, error) from error
        if is_best:
            try:
                shutil.copyfile(self.last_checkpoint, self.best_checkpoint)
            except OSError as error:
                raise CheckpointError(self.best_checkpoint, error) from error

    def _asker(self, epoch: int, epochs: int):
        """The agent's `progress` for this epoch: asks the callbacks whether to go on, and ends the
        epoch (raises _Interrupted) when one asks to stop or pause."""
        total = self.config.trainer.steps_per_epoch

        def progress(steps_done: int) -> None:
            step = Step(epoch=epoch, epochs=epochs, steps_done=steps_done, steps_total=total)
            signal = decision([cb.on_step(step) for cb in self.callbacks])
            if signal is not Signal.CONTINUE:
                raise _Interrupted(signal, step)

        return progress

    def _run_epoch(self, epoch: int, epochs: int) -> dict[str, float]:
        cfg, parts = self.config.trainer, self.parts
        started = time.perf_counter()
        train_metrics: dict[str, float] = {}
        if self.agent.trainable:
            train_metrics = self.agent.learn_epoch(parts.train_env, cfg.steps_per_epoch,
                                                   seed=epoch_seed(cfg.seed, epoch),
                                                   progress=self._asker(epoch, epochs))
        train_seconds = time.perf_counter() - started
        eval_metrics = evaluate(self.agent, self.config.task, parts.market, parts.splits.valid, parts.env_params,
                                device=parts.device)
        steps = train_metrics.get("time/env_steps", 0.0)
        metrics = {
            "epoch": float(epoch),
            **{k: float(v) for k, v in train_metrics.items()},
            **eval_metrics,
            "time/epoch_seconds": time.perf_counter() - started,
            "time/train_seconds": train_seconds,
            "time/steps_per_s": steps / train_seconds if train_seconds > 0 else float("nan"),
        }
        log.info("epoch %d: %s", epoch, {k: round(v, 5) for k, v in metrics.items()})
        return metrics

    def backtest(self, *, split: str = "test", checkpoint: str | Path | None = None,
                 benchmark: str | None = None) -> BacktestReport:
        """Report of the best checkpoint (or `checkpoint`, or the current weights when none exists)."""
        path = Path(checkpoint) if checkpoint else self.best_checkpoint
        if path.exists():
            self.agent.load(path, restore_rng=False)
        return report_of(self.parts, split=split, benchmark=benchmark)
