"""Risk benchmark, part 1: the risk controller's checks in-process, per call.

    python bench/risk.py [--orders 100000] [--repeats 5] [--quick]

A 29-asset account (synthetic prices and positions, long and short, seed 0: the checks read numbers, not
markets) with every limit set, the state the trading loop would assemble (equity marks, 50 orders in the
last minute, 10 open), and one bar. Setups, each warmed up untimed, then timed in interleaved rounds
(bench/timing.py says why), every call timed on its own with perf_counter_ns (the timer's own cost,
printed, is included):
- validate_trading_request, every limit set, --orders random requests: market and limit (some beyond the
  price band), buy and sell, notionals from tiny to over the limits, a few symbols not allowed. A refused
  order stops at the first check it fails, so the mix is faster than the next setup;
- validate_trading_request, every limit set, --orders requests that pass every check: all 13 run;
- validate_trading_request, no limit, a plain engine Account: the pass-through the trading loop calls
  today (the RiskState built from the Account and the bar per order);
- apply_risk_limits, every limit set, 29 targets a call (the gross-exposure limit binding), --orders / 50 calls.
Printed: per setup the p50, p99 and max per call in µs, each the median over the rounds [min - max].
Target (the issue's): p99 < 100 µs per order for a 29-asset account with every limit set.
The emergency stop's time to flat over HTTP (part 2) is not measured here.
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on the path, where bench/engine.py would hide the engine package.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench.timing import Spread, busy_machine, cpu_model, load_average, peak_rss_mb  # noqa: E402
from common.machine import usable_cores  # noqa: E402
from engine.live.orders import Account, OrderRequest  # noqa: E402
from engine.live.venue import Bar  # noqa: E402
from risk.controller import RiskState, apply_risk_limits, validate_trading_request  # noqa: E402
from risk.limits import NO_LIMITS, Limits, TradingHours  # noqa: E402

N_ASSETS = 29
ORDERS = 100_000
QUICK_ORDERS = 10_000
APPLY_SHARE = 50  # apply_risk_limits calls per round: --orders / this
NOW = 1_704_121_200.0  # Monday 2024-01-01 15:00 UTC
TARGET_US = 100.0
LABEL_WIDTH = 58
SETUP_NAMES = {
    "mixed": "validate, every limit, random orders",
    "passing": "validate, every limit, orders passing all 13 checks",
    "pass_through": "validate, no limit, plain Account (today's call)",
    "apply": f"apply_risk_limits, every limit, {N_ASSETS} targets",
}
TARGETED = ("mixed", "passing")

Run = Callable[[], list[int]]
"""One round of one setup: the nanoseconds of each call."""


@dataclasses.dataclass(frozen=True)
class Book:
    """The account, its state, its limits and the bar every setup reads."""

    symbols: tuple[str, ...]
    bar: Bar
    account: Account
    state: RiskState
    limits: Limits


def make_book(seed: int = 0) -> Book:
    rng = np.random.default_rng(seed)
    symbols = tuple(f"S{i:02d}" for i in range(N_ASSETS))
    close = np.exp(rng.uniform(np.log(20), np.log(500), N_ASSETS))
    bar = Bar(index=0, time="2024-01-01T15:00:00", symbols=symbols, open=close, high=close, low=close, close=close,
              volume=np.full(N_ASSETS, np.nan))
    # About 3% of 1,000,000 in each, a quarter of them short: gross exposure near 0.9.
    units = rng.uniform(20_000, 40_000, N_ASSETS) / close * np.where(rng.random(N_ASSETS) < 0.25, -1, 1)
    positions = {s: float(q) for s, q in zip(symbols, units)}
    account = Account(cash=1_000_000.0 - float(units @ close), positions=positions)
    state = RiskState.from_account(account, bar.prices(), now=NOW, open_orders=10,
                                   recent_order_times=tuple(NOW - 59 + i for i in range(50)))
    state = dataclasses.replace(state, day_start_equity=state.equity * 1.01, peak_equity=state.equity * 1.03)
    limits = Limits(max_order_notional=50_000, max_position_fraction=0.1, max_position_units=10_000,
                    max_gross_exposure=1.5, daily_loss_money=50_000, daily_loss_pct=5, max_drawdown_money=100_000,
                    max_drawdown_pct=10, max_orders_per_minute=1_000, max_open_orders=100, price_band_pct=5,
                    allowed_symbols=frozenset(symbols[:-2]), trading_hours=TradingHours("13:30", "21:00",
                                                                                         frozenset(range(5))))
    return Book(symbols, bar, account, state, limits)


def random_orders(book: Book, n: int, seed: int = 1) -> list[OrderRequest]:
    rng = np.random.default_rng(seed)
    close = book.bar.close
    picks = rng.integers(0, N_ASSETS, n)
    notionals = np.exp(rng.normal(np.log(8_000), 1.2, n))  # a tail beyond the 50,000 limit
    limit_orders = rng.random(n) < 0.3
    offsets = rng.normal(0.0, 0.03, n)  # a tail beyond the 5% band
    sides = np.where(rng.random(n) < 0.5, "buy", "sell")
    orders = []
    for i in range(n):
        price = float(close[picks[i]])
        kind = {"order_type": "limit", "limit_price": price * (1 + offsets[i])} if limit_orders[i] else {}
        orders.append(OrderRequest(f"r{i}", book.symbols[picks[i]], str(sides[i]), float(notionals[i] / price),
                                   **kind))
    return orders


def passing_orders(book: Book, n: int, seed: int = 2) -> list[OrderRequest]:
    """Small market orders on allowed symbols, growing positions (so no check is skipped as reducing)."""
    rng = np.random.default_rng(seed)
    allowed = [i for i, s in enumerate(book.symbols) if s in book.limits.allowed_symbols]
    orders = []
    for i, pick in enumerate(rng.choice(allowed, n)):
        symbol = book.symbols[pick]
        side = "buy" if book.state.positions[symbol] > 0 else "sell"
        orders.append(OrderRequest(f"p{i}", symbol, side, float(rng.uniform(500, 2_000) / book.bar.close[pick])))
    return orders


def random_targets(book: Book, n: int, seed: int = 3) -> list[dict[str, float]]:
    """Targets of up to twice the positions, some flipped: the gross-exposure limit binds in most."""
    rng = np.random.default_rng(seed)
    held = np.array([book.state.positions[s] for s in book.symbols])
    return [dict(zip(book.symbols, (held * rng.uniform(-1.0, 2.5, N_ASSETS)).tolist())) for _ in range(n)]


# -- setups: each returns one round's timed run ---------------------------------------------------------

def validate_run(orders: list[OrderRequest], limits: Limits, account, bar: Bar) -> Run:
    def run() -> list[int]:
        clock, latencies = time.perf_counter_ns, []
        for request in orders:
            started = clock()
            validate_trading_request(request, limits=limits, account=account, market=bar)
            latencies.append(clock() - started)
        return latencies
    return run


def apply_run(targets: list[dict[str, float]], book: Book) -> Run:
    def run() -> list[int]:
        clock, latencies = time.perf_counter_ns, []
        for wanted in targets:
            started = clock()
            apply_risk_limits(wanted, limits=book.limits, account=book.state, market=book.bar)
            latencies.append(clock() - started)
        return latencies
    return run


def setups(book: Book, n: int) -> dict[str, Run]:
    return {
        "mixed": validate_run(random_orders(book, n), book.limits, book.state, book.bar),
        "passing": validate_run(passing_orders(book, n), book.limits, book.state, book.bar),
        "pass_through": validate_run(random_orders(book, n), NO_LIMITS, book.account, book.bar),
        "apply": apply_run(random_targets(book, max(n // APPLY_SHARE, 1)), book),
    }


def percentile(sorted_values: list[int], q: float) -> float:
    """The nearest-rank q-th percentile of ascending values."""
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))]


def run_rounds(runs: dict[str, Run], repeats: int) -> dict[str, dict[str, list[float]]]:
    """p50, p99 and max (µs) of every setup in each round; the first setup moves one place per round."""
    for name, run in runs.items():
        print(f"  ... warming up: {SETUP_NAMES[name]}", file=sys.stderr, flush=True)
        run()
    names = list(runs)
    stats = {name: {"p50": [], "p99": [], "max": []} for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            latencies = sorted(runs[name]())
            for key, q in (("p50", 50), ("p99", 99), ("max", 100)):
                stats[name][key].append(percentile(latencies, q) / 1e3)
        print(f"  ... round {round_ + 1}/{repeats} done", file=sys.stderr, flush=True)
    return stats


def timer_overhead_ns(n: int = 100_000) -> float:
    clock, latencies = time.perf_counter_ns, []
    for _ in range(n):
        started = clock()
        latencies.append(clock() - started)
    return float(np.median(latencies))


def decisions(book: Book, orders: list[OrderRequest]) -> Counter:
    return Counter(validate_trading_request(r, limits=book.limits, account=book.state, market=book.bar).code
                   or "approved" for r in orders)


def cell(spread: Spread) -> str:
    return f"{spread.median:7.1f} [{spread.low:6.1f}-{spread.high:7.1f}]"


def print_table(stats: dict[str, dict[str, list[float]]]) -> None:
    print(f"  {'per call, µs: median over rounds [min-max]':<{LABEL_WIDTH}} {'p50':>23} {'p99':>23} {'max':>23}")
    for name, by_key in stats.items():
        spreads = {key: Spread.of(values) for key, values in by_key.items()}
        verdict = ""
        if name in TARGETED:
            met = spreads["p99"].median < TARGET_US
            verdict = f"  (target p99 < {TARGET_US:g}: {'met' if met else 'MISSED'})"
        print(f"  {SETUP_NAMES[name]:<{LABEL_WIDTH}} {cell(spreads['p50']):>23} {cell(spreads['p99']):>23} "
              f"{cell(spreads['max']):>23}{verdict}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, help=f"orders per validate setup per round (default {ORDERS:,}; "
                        f"{QUICK_ORDERS:,} with --quick)")
    parser.add_argument("--repeats", type=int, help="timed rounds (default 5; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer orders and 2 rounds: a smoke run")
    args = parser.parse_args()
    args.orders = args.orders or (QUICK_ORDERS if args.quick else ORDERS)
    args.repeats = args.repeats or (2 if args.quick else 5)
    if args.orders < 1 or args.repeats < 1:
        parser.error("--orders and --repeats must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    book = make_book()
    runs = setups(book, args.orders)
    mix = decisions(book, random_orders(book, args.orders))
    slowest = decisions(book, passing_orders(book, args.orders))
    if slowest["approved"] != args.orders:
        sys.exit(f"the orders meant to pass every check did not all pass: {dict(slowest)}")
    print(f"machine: {cpu_model()}, {usable_cores()} usable cores; load average {load_average()} at start; "
          f"Python {platform.python_version()}")
    print(f"account: {N_ASSETS} assets, equity {book.state.equity:,.0f}, every limit set; timer overhead "
          f"{timer_overhead_ns():.0f} ns per call (included)")
    print(f"random orders: {mix['approved'] / args.orders:.0%} approved; refusals: "
          + ", ".join(f"{code} {n / args.orders:.1%}" for code, n in mix.most_common() if code != "approved"))
    print(f"protocol: every setup warmed up untimed, then {args.repeats} interleaved rounds of {args.orders:,} "
          f"orders (apply: {max(args.orders // APPLY_SHARE, 1):,} calls), each call timed on its own")
    if busy_machine():
        print(f"warning: the machine is busy (load average above {usable_cores()} cores): the tails measure that too")
    started = time.perf_counter()
    stats = run_rounds(runs, args.repeats)
    print_table(stats)
    p99 = Spread.of(stats["passing"]["p99"]).median
    print(f"peak RSS {peak_rss_mb():,.0f} MB; load average {load_average()} at the end; "
          f"{time.perf_counter() - started:,.0f} s from the first warm-up")
    print(f"README: `python bench/risk.py` -> validate_trading_request p99 {p99:.1f} µs per order with every limit "
          f"set on a {N_ASSETS}-asset account, every check running (target < {TARGET_US:g} µs); {cpu_model()}")


if __name__ == "__main__":
    main()
