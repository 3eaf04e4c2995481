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

from engine.agents import AGENTS
from engine.backtest.backtester import evaluate, make_env, run_backtest
from engine.config import RunConfig, check_fits
from engine.data.catalog import load_dataset
from engine.data.market import MarketData
from engine.data.splits import Splits, split_market
from engine.device import resolve_device, seed_everything
from engine.training.callbacks import Callback, EpochEnd, Signal, TrainResult, TrainStart, as_signal

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"
NO_CHECKPOINT = "no checkpoint to resume from in {run_dir}"


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed seed per epoch: nearby (seed, epoch) pairs give unrelated streams."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class Trainer:
    """Trains the agent of one RunConfig.

    trainer = Trainer(config, run_dir="runs/42", callbacks=[History()])
    result = trainer.fit()            # or fit(resume=True) after a pause
    report = trainer.backtest()       # the best checkpoint on the test split
    """

    def __init__(self, config: RunConfig, *, run_dir: str | Path, market: MarketData | None = None,
                 callbacks: list[Callback] | tuple = ()):
        self.config = config
        self.run_dir = Path(run_dir)
        self.callbacks = list(callbacks)
        self.market = market if market is not None else load_dataset(config.dataset, task=config.task)
        self.splits: Splits = split_market(self.market, **config.split.as_kwargs())
        check_fits(config, {name: len(getattr(self.splits, name)) for name in ("train", "valid", "test")})
        self.device = resolve_device(config.trainer.device)
        self.env_params = config.env_params()
        seed_everything(config.trainer.seed)
        self.train_env = make_env(
            config.task, self.market, self.splits.train, self.env_params,
            num_envs=config.trainer.num_envs, device=self.device,
        )
        self.agent = AGENTS[config.agent](
            self.train_env, config.agent_params_obj(), device=self.device, seed=config.trainer.seed
        )

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
                                         device=str(self.device)))
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
        cfg = self.config.trainer
        started = time.perf_counter()
        train_metrics: dict[str, float] = {}
        if self.agent.trainable:
            train_metrics = self.agent.learn_epoch(self.train_env, cfg.steps_per_epoch,
                                                   seed=epoch_seed(cfg.seed, epoch))
        train_seconds = time.perf_counter() - started
        eval_metrics = evaluate(self.agent, self.config.task, self.market, self.splits.valid, self.env_params,
                                device=self.device)
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
                 benchmark: str | None = None) -> dict:
        """Report of the best checkpoint (or `checkpoint`, or the current weights when none exists)."""
        path = Path(checkpoint) if checkpoint else self.best_checkpoint
        if path.exists():
            self.agent.load(path, restore_rng=False)
        bars = getattr(self.splits, split)
        report = run_backtest(self.agent, self.config.task, self.market, bars, self.env_params,
                              benchmark=benchmark, device=self.device)
        report["split"] = split
        report["config"] = self.config.model_dump(mode="json")
        return report
