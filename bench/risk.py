"""Risk benchmark: the risk controller's checks per call (part 1), and an emergency stop's time to flat (part 2).

    python bench/risk.py [checks] [--orders 100000] [--repeats 5] [--quick]
    python bench/risk.py flatten [--repeats 10] [--idle-seconds S] [--quick]

Part 1, `checks` (the default):

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

Part 2, `flatten`: the time from an emergency-stop request to flat, the paper broker holding 29 positions.
Migrates a scratch PostgreSQL database "bench_risk_<random>" (BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/postgres to create it from; dropped at the end), imports dj30 and
trains PPO on it for one epoch as bench/trading.py does (session_submit, run in this process), then
starts the web server as `make run` does (`python -m trademaster_web.serve`, one daphne) and one real
`manage.py trade` process, both on that database with the project's settings (the loop's idle wait
TRADE_IDLE_SECONDS: the default, or --idle-seconds). Each stop: a new paper replay deployment of the
training (deployment_create) at one bar a second, so the loop idles between bars as it does between
live bars; once it holds a position in each of the 29 stocks, and after a further random delay of up to
one bar (seeded: a person presses the button at any moment of the loop's wait, not just after a bar),
FLATTEN is tripped on it, and the time runs until every one of its Position rows is zero (this process
reads them every POLL_MS ms). The loop flattens at its next tick, so a stop takes at most about
TRADE_IDLE_SECONDS plus the flatten's own work, and half of that on average. Tripped
  over HTTP   POST /api/risk/kill-switch through the live server, the owner's bearer token (when the
              server has the endpoint; otherwise this setup is left out and the output says so);
  directly    risk.services.emergency_stop called in this process, what the endpoint calls.
Printed per setup, median over the stops [min - max], in ms: the request until the switch is committed
(the answer came back), the switch's tripped_at until the flatten's first order row (the loop's wait
for its next tick, stamped by two processes' clocks on this machine), and the request until flat.
The setups take turns in interleaved rounds (bench/timing.py says why). Target: < 1 s to flat.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on the path, where bench/engine.py would hide the engine package.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench.harness import PYTHON, Serve, migrate, postgres_database, stop_process  # noqa: E402
from bench.timing import Spread, busy_machine, cpu_model, load_average, peak_rss_mb  # noqa: E402
from bench.trading import Trained, database_env, deploy, dj30_fixtures, setup_django, stop_all  # noqa: E402
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
# Part 2.
PG_PREFIX = "bench_risk"  # and a random suffix (bench.harness.postgres_database)
STOPS = 10
KILL_SWITCH_PATH = "/api/risk/kill-switch"
PACE = 1.0  # bars a second of each deployment
POLL_MS = 2
WAIT_S = 60  # the longest any step may take before the run fails
TARGET_FLAT_S = 1.0
TRADER = "risk-bench"
STOP_NAMES = {"http": "over HTTP (POST /api/risk/kill-switch)", "direct": "directly (risk.services.emergency_stop)"}

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


# -- part 2: an emergency stop's time to flat ---------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Stop:
    """One emergency stop, in seconds from the request."""

    answered: float  # the switch committed: the answer came back (the call returned)
    tick_wait: float  # the switch's tripped_at -> the flatten's first order row (wall clocks, this machine)
    flat: float  # every Position row of the deployment zero


Trip = Callable[[object], int]
"""Trips FLATTEN on a deployment; returns the switch's id once it is committed."""


def log(line: str) -> None:
    print(f"  ... {line}", file=sys.stderr, flush=True)


def wait_until(what: str, predicate, *, every: float = 0.01):
    deadline = time.monotonic() + WAIT_S
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {WAIT_S} s")
        time.sleep(every)
    return value


def held_count(pk: int) -> int:
    from trading.models import Position

    return Position.objects.filter(deployment_id=pk).exclude(quantity=0).count()


def trip_over_http(port: int, token: str) -> Trip:
    def trip(deployment) -> int:
        body = json.dumps({"scope": "deployment", "level": "flatten", "deployment": deployment.pk,
                           "reason": "risk bench"})
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
        try:
            client.request("POST", KILL_SWITCH_PATH, body=body, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            answer = client.getresponse()
            text = answer.read()
        finally:
            client.close()
        if answer.status != 200:
            raise RuntimeError(f"POST {KILL_SWITCH_PATH}: {answer.status} {text[:300]!r}")
        return json.loads(text)["id"]
    return trip


def trip_directly(user) -> Trip:
    def trip(deployment) -> int:
        from risk.services import emergency_stop

        return emergency_stop("deployment", "flatten", actor=user, deployment=deployment, reason="risk bench").pk
    return trip


def endpoint_served(port: int, token: str) -> bool:
    """Whether the live server has the kill-switch endpoint (GET lists the switches; 404: no such route)."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    try:
        client.request("GET", KILL_SWITCH_PATH, headers={"Authorization": f"Bearer {token}"})
        answer = client.getresponse()
        answer.read()
    finally:
        client.close()
    return answer.status == 200


def one_stop(trained: Trained, trip: Trip, delay: float) -> Stop:
    """A new deployment, run by the trading process until it holds every stock; `delay` seconds more;
    FLATTEN; until flat."""
    from risk.models import KillSwitch
    from trading.models import Order

    deployment = deploy(trained, bars_per_second=PACE)
    wait_until(f"deployment {deployment.pk} holding {N_ASSETS} positions",
               lambda: held_count(deployment.pk) == N_ASSETS)
    time.sleep(delay)
    started = time.perf_counter()
    switch = trip(deployment)
    answered = time.perf_counter()
    wait_until(f"deployment {deployment.pk} flat", lambda: held_count(deployment.pk) == 0, every=POLL_MS / 1000)
    flat = time.perf_counter()
    tripped_at = KillSwitch.objects.get(pk=switch).tripped_at
    first = Order.objects.filter(deployment=deployment, created_at__gte=tripped_at).order_by("pk").first()
    stop_all(trained, [deployment.pk])
    return Stop(answered=answered - started, tick_wait=(first.created_at - tripped_at).total_seconds(),
                flat=flat - started)


def stop_rounds(trained: Trained, trips: dict[str, Trip], repeats: int) -> dict[str, list[Stop]]:
    """One untimed stop per setup, then `repeats` rounds of one stop each; the first setup moves one place
    per round."""
    delays = np.random.default_rng(4)
    for name, trip in trips.items():
        log(f"warming up: {STOP_NAMES[name]}")
        one_stop(trained, trip, 0.0)
    names = list(trips)
    stops: dict[str, list[Stop]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            stops[name].append(one_stop(trained, trips[name], float(delays.uniform(0.0, 1.0 / PACE))))
        log(f"round {round_ + 1}/{repeats} done: " + ", ".join(f"{name} {stops[name][-1].flat * 1000:.0f} ms"
                                                                 for name in names))
    return stops


class Trader:
    """One `manage.py trade` on the bench's database, in a process group of its own."""

    def __init__(self, env: dict, log_path: Path):
        self.process = subprocess.Popen([PYTHON, "manage.py", "trade", "--owner", TRADER], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=log_path.open("w"), text=True,
                                        start_new_session=True)
        line = self.process.stdout.readline()
        if not line.startswith(f"trading process {TRADER} ready"):
            self.stop()
            raise RuntimeError(f"the trading process did not start:\n{log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_process(self.process, timeout=30, kill=lambda: os.killpg(self.process.pid, signal.SIGKILL))


def ms(spread: Spread) -> str:
    return f"{spread.median * 1000:7.0f} [{spread.low * 1000:5.0f} - {spread.high * 1000:5.0f}]"


def print_stops(stops: dict[str, list[Stop]]) -> None:
    print(f"  {'ms, median over the stops [min - max]':<44}{'stops':>6}{'switch committed':>25}"
          f"{'loop wait':>25}{'flat':>25}   target < {TARGET_FLAT_S * 1000:g} ms")
    for name, runs in stops.items():
        flat = Spread.of([s.flat for s in runs])
        met = "met" if flat.median < TARGET_FLAT_S else "MISSED"
        every = "every stop" if flat.high < TARGET_FLAT_S else f"{sum(s.flat < TARGET_FLAT_S for s in runs)} stops"
        print(f"  {STOP_NAMES[name]:<44}{len(runs):>6}{ms(Spread.of([s.answered for s in runs])):>25}"
              f"{ms(Spread.of([s.tick_wait for s in runs])):>25}{ms(flat):>25}   {met} ({every} under)")


def flatten_run(args, workdir: Path, cleanup: contextlib.ExitStack) -> None:
    admin = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    pg_name, pg_url = cleanup.enter_context(postgres_database(admin, PG_PREFIX))
    env = database_env(workdir / "postgres", db_name=pg_name, database_url=pg_url)
    if args.idle_seconds is not None:
        env["TRADEMASTER_TRADE_IDLE_SECONDS"] = str(args.idle_seconds)
    log("migrating")
    migrate(env)
    setup_django(env)
    from django.conf import settings
    from django.db import connections

    from accounts.services import api_token_create

    cleanup.callback(connections.close_all)  # before the database is dropped (last in, first out)
    log("importing dj30 and training its policy (one epoch)")
    trained = dj30_fixtures(2)
    _, token = api_token_create(user=trained.user, name="risk bench")
    server = Serve(env, workdir / "serve.log", processes=1)
    cleanup.callback(server.stop)
    trader = Trader(env, workdir / "trade.log")
    cleanup.callback(trader.stop)
    trips = {"direct": trip_directly(trained.user)}
    served = endpoint_served(server.port, token)
    if served:
        trips = {"http": trip_over_http(server.port, token), **trips}
    idle = settings.TRADEMASTER["TRADE_IDLE_SECONDS"]
    print(f"machine: {cpu_model()}, {usable_cores()} usable cores; load average {load_average()} at start; "
          f"Python {platform.python_version()}; PostgreSQL database {pg_name}")
    print(f"a dj30 paper replay deployment (29 stocks, PPO after one epoch) at {PACE:g} bar/s holding {N_ASSETS} "
          f"positions; one `manage.py trade` process (TRADE_IDLE_SECONDS {idle:g}: the loop looks for work at "
          f"least that often); one daphne (`python -m trademaster_web.serve --processes 1`)")
    if not served:
        print(f"NOTE: the server has no {KILL_SWITCH_PATH} endpoint: the switch is tripped by calling "
              "risk.services.emergency_stop directly, not over HTTP")
    print(f"protocol: one untimed stop per setup, then {args.repeats} interleaved rounds, a new deployment each "
          f"stop, tripped 0 to {1 / PACE:g} s (seeded) after it holds {N_ASSETS} positions; flat read every "
          f"{POLL_MS} ms; the loop wait (the switch's tripped_at -> the flatten's first order row) is at most "
          f"about TRADE_IDLE_SECONDS")
    if busy_machine():
        print(f"warning: the machine is busy (load average above {usable_cores()} cores)")
    stops = stop_rounds(trained, trips, args.repeats)
    print_stops(stops)
    headline = "http" if served else "direct"
    flat = Spread.of([s.flat for s in stops[headline]])
    how = "POST /api/risk/kill-switch" if served else "risk.services.emergency_stop (no HTTP endpoint yet)"
    print(f"README: `{command_line()}` -> emergency stop to flat (FLATTEN via {how}, 29 paper positions, "
          f"`manage.py trade` on PostgreSQL, TRADE_IDLE_SECONDS {idle:g}) median {flat.median * 1000:.0f} ms "
          f"[{flat.low * 1000:.0f} - {flat.high * 1000:.0f}] over {len(stops[headline])} stops "
          f"(target < {TARGET_FLAT_S:g} s); {cpu_model()}")


def command_line() -> str:
    return " ".join([".venv/bin/python", "bench/risk.py", *sys.argv[1:]])


def flatten_main(args) -> None:
    # SIGTERM ends the run as Ctrl-C does: through the cleanup (server, trading process, database).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="risk-bench-") as tmp, contextlib.ExitStack() as cleanup:
        flatten_run(args, Path(tmp), cleanup)
    print(f"command: {command_line()}\npeak RSS {peak_rss_mb():,.0f} MB; load average {load_average()} at the "
          f"end; {time.perf_counter() - started:,.0f} s in all")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", choices=("checks", "flatten"), default="checks",
                        help="checks: the controller's checks per call (default); flatten: an emergency stop's "
                        "time to flat")
    parser.add_argument("--orders", type=int, help=f"checks: orders per validate setup per round (default "
                        f"{ORDERS:,}; {QUICK_ORDERS:,} with --quick)")
    parser.add_argument("--repeats", type=int, help=f"timed rounds (default 5, flatten {STOPS}; 2 with --quick)")
    parser.add_argument("--idle-seconds", type=float, help="flatten: the trading process's TRADE_IDLE_SECONDS "
                        "(default: the project's)")
    parser.add_argument("--quick", action="store_true", help="fewer orders and 2 rounds: a smoke run")
    args = parser.parse_args()
    args.orders = args.orders or (QUICK_ORDERS if args.quick else ORDERS)
    args.repeats = args.repeats or (2 if args.quick else STOPS if args.part == "flatten" else 5)
    if args.orders < 1 or args.repeats < 1:
        parser.error("--orders and --repeats must be at least 1")
    if args.idle_seconds is not None and not args.idle_seconds > 0:
        parser.error("--idle-seconds must be above 0")
    return args


def main() -> None:
    args = parse_args()
    if args.part == "flatten":
        flatten_main(args)
        return
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
    try:
        main()
    except KeyboardInterrupt:
        # The cleanup has run: the server and the trading process stopped, the scratch database dropped.
        print("interrupted", file=sys.stderr)
        sys.exit(130)
