"""Trainer callbacks: a small typed context per event, and a way to ask for a pause or a stop.

A callback's `on_epoch_end` may return `Signal.PAUSE` or `Signal.STOP` (or False, read as STOP); the
trainer then ends at that epoch boundary, after the epoch's checkpoint is written, so a paused run
resumes from exactly there.

`on_step` is asked the same between the rollouts and updates inside an epoch, so that a stop or a
pause need not wait for the epoch's end (an epoch of a large `steps_per_epoch` lasts hours). The
interrupted epoch is discarded, not checkpointed half done: the run ends at the last completed
epoch's checkpoint, and a resumed run does the interrupted epoch again from its start, with its own
seed, so it ends exactly where an uninterrupted run ends.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


class Signal(enum.Enum):
    CONTINUE = "continue"
    PAUSE = "pause"
    STOP = "stop"


@dataclass(frozen=True)
class TrainStart:
    epochs: int
    start_epoch: int  # 1 on a fresh run, k+1 when resuming after epoch k
    run_dir: Path
    device: str


@dataclass(frozen=True)
class Step:
    """Where an epoch is, between two of its rollouts or updates."""

    epoch: int  # 1-based: the epoch under way
    epochs: int
    steps_done: int  # env-steps of this epoch so far, summed over the batch
    steps_total: int  # env-steps the epoch asks for (the agent may overshoot it by part of a rollout)


@dataclass(frozen=True)
class EpochEnd:
    epoch: int  # 1-based
    epochs: int
    metrics: dict[str, float]
    is_best: bool
    best_epoch: int | None
    best_value: float | None
    checkpoint: Path


@dataclass
class TrainResult:
    status: str  # "completed", "paused" or "stopped"
    epochs_done: int
    # The epoch a stop or pause cut short (its work discarded), None when the run ended at a boundary.
    interrupted_epoch: int | None
    best_epoch: int | None
    best_value: float | None
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    history: list[dict[str, float]] = field(default_factory=list)


class Callback:
    def on_train_start(self, info: TrainStart) -> None:
        pass

    def on_step(self, ctx: Step) -> Signal | bool | None:
        """Asked between the rollouts and updates of an epoch, often (every env-step for the off-policy
        agents): keep it cheap. PAUSE or STOP ends the run at the last completed epoch."""
        return None

    def on_epoch_end(self, ctx: EpochEnd) -> Signal | bool | None:
        return None

    def on_train_end(self, result: TrainResult) -> None:
        pass


class History(Callback):
    """Keeps every epoch's metrics (what a notebook or a test wants to look at)."""

    def __init__(self):
        self.epochs: list[dict[str, float]] = []

    def on_epoch_end(self, ctx: EpochEnd) -> None:
        self.epochs.append(dict(ctx.metrics))


class StopAfter(Callback):
    """Asks for `signal` once `epoch` has ended: how a run is paused or stopped from outside."""

    def __init__(self, epoch: int, signal: Signal = Signal.STOP):
        self.epoch, self.signal = epoch, signal

    def on_epoch_end(self, ctx: EpochEnd) -> Signal | None:
        return self.signal if ctx.epoch >= self.epoch else None


def as_signal(value: Signal | bool | None) -> Signal:
    if value is False:
        return Signal.STOP
    if isinstance(value, Signal):
        return value
    return Signal.CONTINUE


def decision(values: list[Signal | bool | None]) -> Signal:
    """What the callbacks' answers ask of the trainer together: a stop outweighs a pause."""
    signals = {as_signal(value) for value in values}
    for signal in (Signal.STOP, Signal.PAUSE):
        if signal in signals:
            return signal
    return Signal.CONTINUE
