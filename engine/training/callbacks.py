"""Trainer callbacks: a small typed context per event, and a way to ask for a pause or a stop.

A callback's `on_epoch_end` may return `Signal.PAUSE` or `Signal.STOP` (or False, read as STOP); the
trainer then ends at that epoch boundary, after the epoch's checkpoint is written, so a paused run
resumes from exactly there.
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
    best_epoch: int | None
    best_value: float | None
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    history: list[dict[str, float]] = field(default_factory=list)


class Callback:
    def on_train_start(self, info: TrainStart) -> None:
        pass

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
