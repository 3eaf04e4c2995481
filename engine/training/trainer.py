"""The trainer: epochs over the train split, an evaluation on the valid split after each, the best
checkpoint kept, callbacks told, pause/stop honoured at epoch boundaries, resume from a checkpoint.

Determinism: every epoch is seeded from (config seed, epoch number) and an agent's epoch is a pure
function of its weights, optimizer state and that seed (engine.agents.base.Agent.learn_epoch). So the
same seed on the CPU gives the same metrics run after run, and a run stopped after epoch k and resumed
from its checkpoint ends exactly where an uninterrupted run does.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np

from engine.assembly import RunParts, assemble
from engine.backtest.backtester import evaluate
from engine.backtest.report import BacktestReport
from engine.backtest.run import report_of
from engine.config import RunConfig
from engine.data.market import MarketData
from engine.training.callbacks import Callback, EpochEnd, Signal, TrainResult, TrainStart, as_signal

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"
NO_CHECKPOINT = "no checkpoint to resume from in {run_dir}"
MARKET_WITH_PARTS = "market is for assembling a RunConfig; assembled parts have theirs"


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed seed per epoch: nearby (seed, epoch) pairs give unrelated streams."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


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
        cfg = self.config.trainer
        self.run_dir.mkdir(parents=True, exist_ok=True)
        start_epoch, best_epoch, best_value, history = 1, None, None, []
        if resume:
            if not self.last_checkpoint.exists():
                raise FileNotFoundError(NO_CHECKPOINT.format(run_dir=self.run_dir))
            extra = self.agent.load(self.last_checkpoint)["extra"]
            start_epoch = extra["epoch"] + 1
            best_epoch, best_value, history = extra["best_epoch"], extra["best_value"], extra["history"]
        epochs = cfg.epochs if self.agent.trainable else 1
        for cb in self.callbacks:
            cb.on_train_start(TrainStart(epochs=epochs, start_epoch=start_epoch, run_dir=self.run_dir,
                                         device=str(self.parts.device)))
        status = "completed"
        for epoch in range(start_epoch, epochs + 1):
            metrics = self._run_epoch(epoch)
            history.append(metrics)
            score = self._score(metrics)
            is_best = best_value is None or score > best_value
            if is_best:
                best_epoch, best_value = epoch, score
            extra = {"epoch": epoch, "best_epoch": best_epoch, "best_value": best_value, "history": history,
                     "config": self.config.model_dump(mode="json")}
            self.agent.save(self.last_checkpoint, epoch=epoch, extra=extra)
            if is_best:
                shutil.copyfile(self.last_checkpoint, self.best_checkpoint)
            ctx = EpochEnd(epoch=epoch, epochs=epochs, metrics=metrics, is_best=is_best, best_epoch=best_epoch,
                           best_value=best_value, checkpoint=self.last_checkpoint)
            signals = [as_signal(cb.on_epoch_end(ctx)) for cb in self.callbacks]
            if epoch < epochs and Signal.STOP in signals:
                status = "stopped"
                break
            if epoch < epochs and Signal.PAUSE in signals:
                status = "paused"
                break
        result = TrainResult(
            status=status,
            epochs_done=int(history[-1]["epoch"]) if history else start_epoch - 1,
            best_epoch=best_epoch,
            best_value=best_value,
            best_checkpoint=self.best_checkpoint if self.best_checkpoint.exists() else None,
            last_checkpoint=self.last_checkpoint if self.last_checkpoint.exists() else None,
            history=history,
        )
        for cb in self.callbacks:
            cb.on_train_end(result)
        return result

    def _run_epoch(self, epoch: int) -> dict[str, float]:
        cfg, parts = self.config.trainer, self.parts
        started = time.perf_counter()
        train_metrics: dict[str, float] = {}
        if self.agent.trainable:
            train_metrics = self.agent.learn_epoch(parts.train_env, cfg.steps_per_epoch,
                                                   seed=epoch_seed(cfg.seed, epoch))
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
