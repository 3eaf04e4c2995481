"""Timing for benchmarks on a shared machine: each setup warmed up untimed, then every setup timed in
interleaved rounds and summarised by its median and spread.

Why interleave: a setup timed once, after another, measures whatever else the machine was doing at
that moment (three runs of a timed-once bench put one ratio at 14.6x, 31.9x and 14.2x). Rounds in
which every setup runs once expose all of them to the same background load, a ratio taken within a
round cancels most of what remains, and the median over rounds ignores the round a neighbour's test
run landed on.
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.machine import usable_cores

Run = Callable[[], int]
"""One timed unit of work; returns how many items (env-steps) it did."""


@dataclass(frozen=True)
class Setup:
    """Something to time. `prepare` builds it, runs its untimed warm-up and returns its Run."""

    name: str
    prepare: Callable[[], Run]


@dataclass(frozen=True)
class Spread:
    """Median and range of one measure over the rounds."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    @property
    def relative_range(self) -> float:
        """(max - min) / median: 0.1 = the rounds spanned 10% of the median."""
        return (self.high - self.low) / self.median if self.median else float("nan")


def run_rounds(setups: Sequence[Setup], repeats: int, *, log: Callable[[str], None] | None = None
               ) -> dict[str, list[float]]:
    """Items per second of every setup in each of `repeats` rounds, in round order.

    All setups are prepared (and warmed up) first. Each round then runs every setup once; the starting
    setup moves one place per round so that none always runs right after the same neighbour."""
    runs = {}
    for setup in setups:
        if log:
            log(f"warming up: {setup.name}")
        runs[setup.name] = setup.prepare()
    names = list(runs)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            rates[name].append(timed_rate(runs[name]))
        if log:
            log(f"round {round_ + 1}/{repeats} done")
    return rates


def timed_rate(run: Run) -> float:
    started = time.perf_counter()
    items = run()
    return items / (time.perf_counter() - started)


def per_round_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """numerator[i] / denominator[i]: a ratio per round, both measured under that round's load."""
    return [a / b for a, b in zip(numerator, denominator)]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    """The 1, 5 and 15-minute load averages: how busy the machine was besides this benchmark."""
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def busy_machine() -> bool:
    """Whether the last minute's load average exceeds the usable cores: other processes compete for them."""
    return hasattr(os, "getloadavg") and os.getloadavg()[0] > usable_cores()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
