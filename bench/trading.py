"""Trading: how long a bar takes to become accepted orders, and how many deployments one process keeps up with.

    python bench/trading.py [--bars 1000] [--platform-bars 1000] [--rounds 5] [--seconds 30]
                            [--sizes 10 25 50 100 150 200] [--refine 3] [--throughput-market synthetic] [--quick]

Migrates a scratch PostgreSQL database "bench_trading_<random>" on the local server (BENCH_POSTGRES_URL,
default postgres://postgres@127.0.0.1:5432/postgres to create it from; a name of its own, so that runs
sharing the server do not drop each other's, and dropped at the end) and a new SQLite file (the embedded
default's settings), with runs, deployments and datasets in a temporary folder. In each database:
dataset_import of ../shared/data/dj30 (29 Dow Jones stocks, daily) and a completed one-epoch PPO
training of it (session_submit, then run in this process as a worker would): a PPO policy at the
default network size (64x64), its weights those of an agent that has barely trained, since the forward
pass, not what it learned, is what a bar costs. When the bars asked for are more than the test period
the deployment replays, the deployments replay the whole dataset from its first decision bar instead.
Then:

  1. latency, bar -> orders accepted by the paper broker, ms per bar of dj30, every order through the
     risk check (risk.controller.validate_trading_request), at two levels:
       engine only   --bars bars of engine.live.trader.trade_bar with the deployment's ReplayFeed,
                     PaperBroker and Policy (built by trading.runtime.build_runtime): from the bar
                     feed.poll() returned to the bar's last broker.submit returning (to trade_bar
                     returning when the bar places no order);
       platform      --platform-bars bars of TradingProcess.trade(pk, bar): the bar's whole transaction
                     (row lock, orders, fills, positions, the mark, the broker's state) until it has
                     committed, on PostgreSQL and on SQLite (the SQLite side in a process of its own, this
                     file's `worker` command: one process serves one database). As many bars as the
                     engine's by default. Whether a bar costs more the more bars the deployment traded
                     before it is measured (the slope over the bars) and printed when it does.
     A new deployment of the training each round; the levels and databases take turns within every
     round, the first moving one place per round (bench/timing.py says why). Each percentile is the
     median over the rounds; the p95's range over the rounds is printed beside it. Target: p95 < 50 ms.
  2. throughput: N new paper replay deployments at one bar a second, one TradingProcess loop (run(), in
     this process, on PostgreSQL) for --seconds of wall time, N = --sizes in turn until one falls behind,
     then --refine halvings of the gap. A bar is due when its feed schedules it (first poll + k seconds);
     its lateness is from then until its transaction committed. A deployment keeps up when every bar due
     more than a second before the end has committed by then (bars done >= elapsed seconds - 1).
     Target: >= 100 deployments.
Every figure is also printed as a ratio to its target: the issue's targets are the peer of this bench.
At the defaults about 11 minutes on 2 busy cores; --quick is a smoke run of about 100 seconds.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on the path, where bench/engine.py would hide the engine package.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench.harness import (  # noqa: E402
    PYTHON,
    SETTINGS_MODULE,
    environment,
    migrate,
    percentile,
    postgres_database,
    stop_process,
)
from bench.timing import Spread, busy_machine, cpu_model, load_average, peak_rss_mb  # noqa: E402
from common.machine import usable_cores  # noqa: E402

DJ30 = ROOT.parent / "shared" / "data" / "dj30"
PG_PREFIX = "bench_trading"  # and a random suffix (bench.harness.postgres_database)
# Added to bench.harness's settings shim: runs, deployments and imported datasets in the bench's folder
# (a fresh database reuses ids, and a run folder with a checkpoint would be resumed).
SETTINGS_EXTRA = """
from pathlib import Path
_BENCH_DIR = Path(os.environ["TRADING_BENCH_DIR"])
TRADEMASTER = {**TRADEMASTER, "RUNS_DIR": _BENCH_DIR / "runs", "DEPLOYMENTS_DIR": _BENCH_DIR / "deployments",
               "DATA_DIR": _BENCH_DIR / "data"}
"""
# bench/dj30.py's split. The training: one epoch of 512 env-steps at PPO's default network (64x64).
SPLIT = {"train": ["2012-01-01", "2019-12-31"], "valid": ["2020-01-01", "2020-12-31"],
         "test": ["2021-01-01", "2021-12-31"]}
TRAINING = {"trainer": {"epochs": 1, "steps_per_epoch": 512, "num_envs": 8, "seed": 0, "device": "cpu"},
            "agent_params": {"n_steps": 64}}
PM = "portfolio_management"
TARGET_P95_MS = 50.0
TARGET_DEPLOYMENTS = 100
RATE = 1.0  # bars a second of each throughput deployment
REPLY = "@trading-bench "  # marks the worker's answers on its stdout
LEVELS = ("engine only", "PostgreSQL", "SQLite")
LABELS = {"engine only": "engine only (trade_bar)", "PostgreSQL": "platform, PostgreSQL",
          "SQLite": "platform, SQLite"}


def say(message: dict) -> None:
    print(REPLY + json.dumps(message), flush=True)


def log(line: str) -> None:
    print(f"  ... {line}", file=sys.stderr, flush=True)


# -- Django, in this process ---------------------------------------------------------------------------

def database_env(workdir: Path, *, db_name: str, database_url: str | None = None) -> dict:
    """The environment of one database's side: bench.harness's settings shim with SETTINGS_EXTRA, and a
    folder of its own for runs, deployments and datasets."""
    workdir.mkdir()
    env = environment(workdir, db_name=db_name, database_url=database_url)
    with (workdir / f"{SETTINGS_MODULE}.py").open("a") as shim:
        shim.write(SETTINGS_EXTRA)
    return {**env, "TRADING_BENCH_DIR": str(workdir)}


def setup_django(env: dict) -> None:
    """Django in this process with `env`'s settings: what `manage.py trade` runs on."""
    import django

    os.environ.update(env)
    if "DATABASE_URL" not in env:
        os.environ.pop("DATABASE_URL", None)
    for folder in reversed(env["PYTHONPATH"].split(os.pathsep)):
        sys.path.insert(0, folder)
    django.setup()


# -- fixtures: a user, the datasets, completed trainings -----------------------------------------------

@dataclass
class Trained:
    """A completed training to deploy, and the bars its latency deployments replay."""

    user: object
    session: object
    replay: range | None  # None: the test period as deployed
    replay_text: str


def trained_session(user, dataset, name: str, params: dict):
    """A completed one-epoch training of `dataset`, made as the platform makes one: session_submit, then
    run in this process as a worker runs it (tests/platform/session_helpers.run_here)."""
    from sessions import runner
    from sessions.services import session_start, session_submit
    from sessions.services.watchdog import this_host
    from strategies.services.strategies import strategy_create

    strategy = strategy_create(owner=user, name=name, task=PM, agent="ppo", dataset=dataset, params=params)
    session = session_submit(strategy=strategy, user=user, enqueue=False)
    done = runner.execute(session_start(session=session, process_id=os.getpid(), host=this_host()))
    if done.status != "completed":
        raise RuntimeError(f"the training of {name} did not complete: {done.error}")
    return done


def replay_period(session, bars: int) -> tuple[range | None, str]:
    """The deployment's own test period when it holds `bars` bars; else the whole dataset from its first
    decision bar."""
    from engine.backtest.rollout import first_decision_bar
    from engine.config import RunConfig
    from engine.data.catalog import load_dataset
    from engine.data.splits import split_market

    config = RunConfig.model_validate(session.config)
    market = load_dataset(config.dataset, task=config.task)
    window = config.env_params().window
    test = split_market(market, **config.split.as_kwargs()).test
    deployed = range(first_decision_bar(test.start, window), test.stop)
    replay = None if bars <= len(deployed) else range(first_decision_bar(0, window), len(market))
    used = (replay or deployed)[:bars]
    if len(used) < bars:
        raise SystemExit(f"--bars {bars}: the dataset holds {len(used)} decision bars")
    dates = market.dates[used[0]], market.dates[used[-1]]
    where = (f"the test period as deployed ({len(deployed)} bars)" if replay is None else
             f"the whole dataset from its first decision bar ({len(replay):,} bars; its test period holds "
             f"{len(deployed)})")
    span = " to ".join(str(d)[:10] for d in dates)
    return replay, f"{where}, its first {bars:,} bars ({span})"


def dj30_fixtures(bars: int) -> Trained:
    from django.contrib.auth import get_user_model

    from strategies.services.datasets import dataset_import

    user = get_user_model().objects.create_user(username="trader", password=None)
    dataset = dataset_import(path=DJ30, name="dj30")
    session = trained_session(user, dataset, "dj30 ppo", {**TRAINING, "split": SPLIT})
    replay, text = replay_period(session, bars)
    return Trained(user=user, session=session, replay=replay, replay_text=text)


def synthetic_fixtures(user) -> Trained:
    """The engine's built-in "synthetic" market (5 assets, 1,500 bars) as a Dataset, and its training."""
    import datetime

    from strategies.models import Dataset

    dataset = Dataset.objects.create(
        name="synthetic", frequency="1d", periods_per_year=252.0, tickers=["A0", "A1", "A2", "A3", "A4"],
        start_date=datetime.date(2000, 1, 3), end_date=datetime.date(2005, 10, 1), path="synthetic",
        checksum="1" * 64, n_bars=1500)
    session = trained_session(user, dataset, "synthetic ppo", TRAINING)
    return Trained(user=user, session=session, replay=None, replay_text="the test period as deployed")


def deploy(trained: Trained, **options):
    """A pending paper replay deployment of the training (deployment_create), over trained.replay."""
    from trading.models import Deployment
    from trading.services import deployment_create

    deployment = deployment_create(session=trained.session, user=trained.user, **options)
    if trained.replay is not None:
        Deployment.objects.filter(pk=deployment.pk).update(replay_start=trained.replay.start,
                                                           replay_stop=trained.replay.stop)
        deployment.refresh_from_db()
    return deployment


def stop_all(trained: Trained, pks: list[int]) -> None:
    """Stop deployments for good, so that no later trading process claims them."""
    from trading.models import Deployment
    from trading.services import deployment_stop

    for deployment in Deployment.objects.filter(pk__in=pks).exclude(status__in=["stopped", "failed"]):
        deployment_stop(deployment=deployment, user=trained.user)


# -- 1. latency -------------------------------------------------------------------------------------------

class StampedBroker:
    """A broker that notes when its last submit returned: the moment the bar's last order was accepted."""

    def __init__(self, broker):
        self.broker = broker
        self.last_submit: float | None = None
        self.submits = 0

    def submit(self, request, bar):
        update = self.broker.submit(request, bar)
        self.last_submit = time.perf_counter()
        self.submits += 1
        return update

    def __getattr__(self, name):
        return getattr(self.broker, name)


def risk_check(request, account, bar):
    """The trading process's check without its record of refusals (nothing is refused: no limit is set)."""
    from engine.live.trader import Verdict
    from risk.controller import NO_LIMITS, validate_trading_request

    decision = validate_trading_request(request, limits=NO_LIMITS, account=account, market=bar)
    return Verdict(approved=decision.approved, code=decision.code, message=decision.message)


def engine_round(deployment, bars: int) -> dict:
    """{"times": ms per bar, bar polled -> last order accepted, "orders": orders a bar} over `bars` bars."""
    from engine.live.trader import trade_bar
    from trading.runtime import build_runtime

    runtime = build_runtime(deployment)  # untimed: what a process builds once per deployment
    broker = StampedBroker(runtime.broker)
    times = []
    for _ in range(bars):
        bar = runtime.feed.poll()
        started, broker.last_submit = time.perf_counter(), None
        trade_bar(bar, feed=runtime.feed, policy=runtime.policy, broker=broker, check=risk_check,
                  record=lambda update: None, id_prefix=runtime.id_prefix, decide=not runtime.feed.finished)
        times.append(((broker.last_submit or time.perf_counter()) - started) * 1000)
    return {"times": times, "orders": broker.submits / bars}


def platform_round(trained: Trained, bars: int) -> dict:
    """{"times": ms per bar of TradingProcess.trade, bar polled -> its transaction committed, "queries":
    SQL statements a bar} over `bars` bars of a new deployment."""
    from django.db import connection

    from trading.process import TradingProcess

    deployment = deploy(trained)
    process = TradingProcess()
    process.claim()  # untimed: the process starts the deployment (policy, feed, broker; pending -> running)
    runtime = process.runtimes[deployment.pk]
    times, queries = [], [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        for _ in range(bars):
            bar = runtime.feed.poll()
            started = time.perf_counter()
            process.trade(deployment.pk, bar)
            times.append((time.perf_counter() - started) * 1000)
    process.release_all()
    stop_all(trained, [deployment.pk])
    return {"times": times, "queries": queries[0] / bars}


class SqliteWorker:
    """This file's `worker` command on the SQLite side: fixtures there, then one platform round a request."""

    def __init__(self, env: dict, *, replay_bars: int):
        self.process = subprocess.Popen(
            [PYTHON, str(Path(__file__).resolve()), "worker", "--replay-bars", str(replay_bars)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def answer(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
            print(line, end="", file=sys.stderr)  # anything else it printed
        raise RuntimeError(f"the SQLite worker ended (exit status {self.process.wait()})")

    def round(self, bars: int) -> dict:
        self.process.stdin.write(f"round {bars}\n")
        self.process.stdin.flush()
        return self.answer()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        stop_process(self.process, timeout=30, kill=self.process.kill)


def worker(replay_bars: int) -> None:
    """The `worker` command: Django on the database of its environment, the dj30 fixtures, then a
    platform round of BARS bars for every "round BARS" line on stdin until it ends."""
    import django
    import torch

    django.setup()
    trained = dj30_fixtures(replay_bars)
    torch.set_num_threads(1)  # as the trading process runs (TradingProcess.run)
    say({"ready": True})
    for line in sys.stdin:
        words = line.split()
        if words[:1] != ["round"]:
            break
        say(platform_round(trained, int(words[1])))


@dataclass
class Latency:
    """ms per bar of every level, a list per round in bar order; the orders a bar placed (engine only)
    and the SQL statements a bar ran (platform), averaged over the timed rounds."""

    times: dict[str, list[list[float]]] = field(default_factory=lambda: {level: [] for level in LEVELS})
    per_bar: dict[str, list[float]] = field(default_factory=lambda: {level: [] for level in LEVELS})

    @property
    def orders_per_bar(self) -> float:
        return statistics.mean(self.per_bar["engine only"])

    def queries_per_bar(self, level: str) -> float:
        return statistics.mean(self.per_bar[level])


def measure_latency(trained: Trained, sqlite: SqliteWorker, *, bars: int, platform_bars: int,
                    rounds: int) -> Latency:
    """Every level once untimed (a tenth of its bars: imports, caches, the first queries), then `rounds`
    rounds of every level, the first level moving one place per round."""
    import torch

    torch.set_num_threads(1)  # as the trading process runs (TradingProcess.run)
    engine_deployment = deploy(trained)
    stop_all(trained, [engine_deployment.pk])  # build_runtime needs its row; no process may run it
    result = Latency()
    runs = {"engine only": partial(engine_round, engine_deployment), "PostgreSQL": partial(platform_round, trained),
            "SQLite": sqlite.round}
    counts = {"engine only": bars, "PostgreSQL": platform_bars, "SQLite": platform_bars}
    log("warming up: every level untimed, a tenth of its bars")
    for level, run in runs.items():
        run(max(counts[level] // 10, 2))
    for round_ in range(rounds):
        shift = round_ % len(LEVELS)
        for level in LEVELS[shift:] + LEVELS[:shift]:
            answer = runs[level](counts[level])
            result.times[level].append(answer["times"])
            result.per_bar[level].append(answer.get("orders", answer.get("queries")))
        log(f"latency round {round_ + 1}/{rounds} done")
    return result


# -- 2. throughput ----------------------------------------------------------------------------------------

class StampedFeed:
    """A feed that notes when each bar it returns was due: first poll + k / RATE, the replay's schedule."""

    def __init__(self, feed):
        self.feed = feed
        self.first: float | None = None
        self.due: list[float] = []

    def poll(self):
        if self.first is None:
            self.first = time.monotonic()
        bar = self.feed.poll()
        if bar is not None:
            self.due.append(self.first + len(self.due) / RATE)
        return bar

    def __getattr__(self, name):
        return getattr(self.feed, name)


def timed_process_class():
    from trading.process import TradingProcess

    class TimedProcess(TradingProcess):
        """The trading process, noting when each bar's transaction committed and how long it took."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.commits: dict[int, list[float]] = {}
            self.busy = 0.0

        def trade(self, pk: int, bar) -> None:
            started = time.monotonic()
            super().trade(pk, bar)
            ended = time.monotonic()
            self.busy += ended - started
            self.commits.setdefault(pk, []).append(ended)

    return TimedProcess


@dataclass
class Level:
    n: int
    bars: int
    lateness_ms: list[float]
    busy: float  # share of the wall time spent in bar transactions
    behind: int  # deployments that did not keep up

    @property
    def keeps_up(self) -> bool:
        return self.behind == 0


def throughput_level(trained: Trained, n: int, seconds: float) -> Level:
    """N deployments at RATE bars a second, one trading process loop for `seconds` of wall time."""
    pks = [deploy(trained, bars_per_second=RATE).pk for _ in range(n)]
    process = timed_process_class()()
    process.claim()  # untimed: start every runtime first, as a process restarted with N deployments does
    feeds = {}
    for pk, runtime in process.runtimes.items():
        feeds[pk] = runtime.feed = StampedFeed(runtime.feed)
    stop, window = threading.Event(), {}
    timer = threading.Timer(seconds, lambda: (window.setdefault("end", time.monotonic()), stop.set()))
    timer.start()
    try:
        process.run(stop)
    finally:
        timer.cancel()
        stop_all(trained, pks)
    return summarise(n, feeds, process.commits, end=window["end"], busy=process.busy / seconds)


def summarise(n: int, feeds: dict, commits: dict, *, end: float, busy: float) -> Level:
    lateness, behind, bars = [], n - len(feeds), 0  # a deployment that never started did not keep up
    for pk, feed in feeds.items():
        done = [t for t in commits.get(pk, []) if t <= end]
        lateness += [(t - due) * 1000 for t, due in zip(done, feed.due)]
        behind += len(done) < owed(feed, end)
        bars += len(done)
    return Level(n=n, bars=bars, lateness_ms=lateness or [float("nan")], busy=busy, behind=behind)


def owed(feed: StampedFeed, end: float) -> int:
    """The bars of `feed` due more than a bar's interval before `end`, by its schedule (a feed the loop
    never polled owes its first bar)."""
    if feed.first is None:
        return 1
    due = max(int((end - 1.0 / RATE - feed.first) * RATE) + 1, 0)
    return min(due, len(feed.due)) if feed.finished else due


def measure_throughput(trained: Trained, *, sizes: list[int], seconds: float, refine: int) -> list[Level]:
    """`sizes` in turn until one falls behind, then `refine` halvings of the gap between the largest
    that kept up and the first that did not."""
    levels, good, bad = [], 0, None

    def level(n: int) -> bool:
        log(f"throughput: {n} deployments for {seconds:g} s")
        levels.append(throughput_level(trained, n, seconds))
        return levels[-1].keeps_up

    for n in sizes:
        if not level(n):
            bad = n
            break
        good = n
    for _ in range(refine if bad else 0):
        n = (good + bad) // 2
        if n in (good, bad):
            break
        good, bad = (n, bad) if level(n) else (good, n)
    return sorted(levels, key=lambda x: x.n)


# -- the report -------------------------------------------------------------------------------------------

def stats(rounds: list[list[float]]) -> dict[str, Spread]:
    """Each percentile's (and the max's) spread over the rounds; and the median ms per bar of the first
    and the last tenth of the bars of every round (a deployment's first bars, and its latest)."""
    spreads = {f"p{q}": Spread.of([percentile(r, q) for r in rounds]) for q in (50, 95, 99)}
    tenth = max(len(rounds[0]) // 10, 1)
    first = statistics.median(x for r in rounds for x in r[:tenth])
    last = statistics.median(x for r in rounds for x in r[-tenth:])
    return {**spreads, "max": Spread.of([max(r) for r in rounds]), "first": first, "last": last}


def growth(s: dict, bars: int) -> float:
    """ms a bar's cost grows per bar already traded: a line through the first and last tenths' medians
    (their middles are 0.05 and 0.95 of the bars in)."""
    return (s["last"] - s["first"]) / (0.9 * bars)


def print_header(args, pg_name: str) -> None:
    import numpy as np
    import torch

    print(f"machine: {cpu_model()}, {usable_cores()} usable cores; load average {load_average()} at start")
    print(f"torch {torch.__version__} at 1 thread (as the trading process runs); numpy {np.__version__}; "
          f"Python {platform.python_version()}; PostgreSQL database {pg_name}, SQLite file (WAL, IMMEDIATE)")
    if busy_machine():
        print(f"warning: the machine is busy (load average above {usable_cores()} cores): the figures include "
              "waiting for a core")


def print_latency(latency: Latency, trained: Trained, args) -> None:
    print(f"\n1. latency, bar -> orders accepted by the paper broker, ms per bar. dj30 (29 assets), "
          f"{trained.replay_text}; {latency.orders_per_bar:.1f} orders a bar on average, each through the "
          f"risk check; PPO 64x64, the weights of a one-epoch, 512-step training (as good as untrained: the "
          f"forward pass is what costs). Median over {args.rounds} interleaved rounds, each on a new deployment")
    print(f"  {'level':<26}{'bars':>6}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}   {'p95 over the rounds':>21}"
          f"{'first 10%':>11}{'last 10%':>10}   p95/target")
    for level in LEVELS:
        s = stats(latency.times[level])
        print(f"  {LABELS[level]:<26}{len(latency.times[level][0]):>6,}"
              + "".join(f"{s[k].median:>9.1f}" for k in ("p50", "p95", "p99", "max"))
              + f"   [{s['p95'].low:>8.1f} - {s['p95'].high:>8.1f}]{s['first']:>11.1f}{s['last']:>10.1f}"
              f"   {s['p95'].median / TARGET_P95_MS:>9.2f}x")
    print(f"  (engine only: poll -> the bar's last submit returned; platform: poll -> TradingProcess.trade "
          f"committed, {latency.queries_per_bar('PostgreSQL'):.0f} SQL statements a bar; first/last 10%: median "
          f"ms per bar of the first and last tenth of each round's bars; target p95 < {TARGET_P95_MS:g} ms: a "
          f"ratio below 1 meets it)")
    print_growth(latency, args)


def print_growth(latency: Latency, args) -> None:
    """What the platform's bars would cost at --bars into a deployment, when they grow with its history."""
    slopes = {level: growth(stats(latency.times[level]), args.platform_bars) for level in LEVELS[1:]}
    if args.platform_bars >= args.bars or max(slopes.values()) <= 0.05:
        return
    ends = {level: stats(latency.times[level])["first"] + slopes[level] * (args.bars - 0.05 * args.platform_bars)
            for level in slopes}
    print(f"  platform: {args.platform_bars} bars a round, not {args.bars:,}: a bar's cost grows with the bars "
          f"before it (" + ", ".join(f"{level} +{slopes[level]:.2f} ms" for level in slopes) + " per bar traded); "
          f"a straight line through these bars puts bar {args.bars:,} at "
          + ", ".join(f"~{ends[level]:,.0f} ms ({level})" for level in ends) + " (a projection, not a measurement)")


def print_throughput(levels: list[Level], args) -> None:
    assets = "5 assets" if args.throughput_market == "synthetic" else "29 assets"
    print(f"\n2. throughput: N paper replay deployments ({args.throughput_market}, {assets}, each new) at {RATE:g} "
          f"bar/s each, one TradingProcess loop (run(), in this process) on PostgreSQL for {args.seconds:g} s")
    print(f"  {'N':>5}{'bars':>8}{'late p50 ms':>13}{'late p99 ms':>13}{'late max ms':>13}{'loop busy':>11}"
          f"{'behind':>8}   keeps up")
    for level in levels:
        lat = level.lateness_ms
        print(f"  {level.n:>5}{level.bars:>8}{percentile(lat, 50):>13.1f}{percentile(lat, 99):>13.1f}"
              f"{max(lat):>13.1f}{level.busy:>11.0%}{level.behind:>8}   {'yes' if level.keeps_up else 'no'}")
    print("  (late: bar due -> its transaction committed; loop busy: the share of the wall time in bar "
          "transactions; behind: deployments with a bar due over 1 s before the end not committed by then)")


def most_kept_up(levels: list[Level], args) -> str:
    best = max((level.n for level in levels if level.keeps_up), default=0)
    everything = all(level.keeps_up for level in levels) and best == max(args.sizes)
    return f">= {best}" if everything else str(best)


def print_summary(latency: Latency, levels: list[Level], args, command: str) -> None:
    p95 = {level: stats(latency.times[level])["p95"].median for level in LEVELS}
    most = most_kept_up(levels, args)
    best = int(most.removeprefix(">= "))
    slope = growth(stats(latency.times["PostgreSQL"]), args.platform_bars)
    print("\nratios, figure / target (the issue's targets are the peer): p95 latency "
          + ", ".join(f"{level} {p95[level] / TARGET_P95_MS:.2f}x" for level in LEVELS)
          + f" (target < {TARGET_P95_MS:g} ms); deployments kept up {most} / {TARGET_DEPLOYMENTS} = "
          f"{best / TARGET_DEPLOYMENTS:.2f}x (target >= {TARGET_DEPLOYMENTS})")
    print("peer: freqtrade runs one bot (one strategy, one account) per process, so a deployments-per-process "
          "ratio against it would be N / 1: not a meaningful comparison")
    print(f"\nREADME: Trading (`{command}`, {usable_cores()} cores): bar -> orders accepted p95 "
          f"{p95['engine only']:.1f} ms in the engine ({args.bars:,} bars), {p95['PostgreSQL']:.0f} ms through the "
          f"platform on PostgreSQL and {p95['SQLite']:.0f} ms on SQLite (a new deployment's first "
          f"{args.platform_bars:,} bars; slope {slope:+.2f} ms a bar), "
          f"x {args.rounds} rounds, dj30 29 assets, PPO (target p95 < "
          f"{TARGET_P95_MS:g} ms); one trading process keeps up with {most} paper deployments at 1 bar/s "
          f"({args.throughput_market}, {args.seconds:g} s; target >= {TARGET_DEPLOYMENTS}).")


# -- the run ----------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, help="engine-only bars a round (default 1,000; 100 with --quick)")
    parser.add_argument("--platform-bars", type=int, help="platform bars a round and database (default: --bars)")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 5; 2 with --quick)")
    parser.add_argument("--seconds", type=float, help="wall time per throughput size (default 30; 5 with --quick)")
    parser.add_argument("--sizes", type=int, nargs="+", help="deployment counts to try in turn until one falls "
                        "behind (default 10 25 50 100 150 200; 2 5 with --quick)")
    parser.add_argument("--refine", type=int, default=None, help="halvings of the gap between the largest size "
                        "that kept up and the first that fell behind (default 3; 0 with --quick)")
    parser.add_argument("--throughput-market", choices=("synthetic", "dj30"), default="synthetic",
                        help="the throughput deployments' market (default: the built-in 5-asset synthetic)")
    parser.add_argument("--quick", action="store_true", help="fewer bars, rounds, sizes and seconds: a smoke run")
    args = parser.parse_args(argv)
    quick = args.quick
    args.bars = args.bars or (100 if quick else 1000)
    args.platform_bars = args.platform_bars or args.bars
    args.rounds = args.rounds or (2 if quick else 5)
    args.seconds = args.seconds or (5.0 if quick else 30.0)
    args.sizes = sorted(args.sizes or ([2, 5] if quick else [10, 25, 50, 100, 150, 200]))
    args.refine = (0 if quick else 3) if args.refine is None else args.refine
    if min(args.bars, args.platform_bars) < 2 or args.rounds < 1 or args.seconds < 2 or min(args.sizes) < 1:
        parser.error("--bars and --platform-bars must be at least 2, --rounds and --sizes at least 1, "
                     "--seconds at least 2")
    return args


def command_line() -> str:
    return " ".join([".venv/bin/python", "bench/trading.py", *sys.argv[1:]])


def run(args, workdir: Path, cleanup: contextlib.ExitStack) -> None:
    admin = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    pg_name, pg_url = cleanup.enter_context(postgres_database(admin, PG_PREFIX))
    pg_env = database_env(workdir / "postgres", db_name=pg_name, database_url=pg_url)
    sqlite_env = database_env(workdir / "sqlite", db_name=str(workdir / "sqlite" / "db.sqlite3"))
    log("migrating both databases")
    migrate(pg_env)
    migrate(sqlite_env)
    replay_bars = max(args.bars, args.platform_bars)
    sqlite = SqliteWorker(sqlite_env, replay_bars=replay_bars)  # its fixtures meanwhile, on the other core
    cleanup.callback(sqlite.stop)
    setup_django(pg_env)
    from django.db import connections

    cleanup.callback(connections.close_all)  # before the database is dropped (last in, first out)
    log("importing dj30 and training its policy (one epoch); the SQLite worker does the same")
    trained = dj30_fixtures(replay_bars)
    throughput = trained if args.throughput_market == "dj30" else synthetic_fixtures(trained.user)
    sqlite.answer()  # ready
    print_header(args, pg_name)
    latency = measure_latency(trained, sqlite, bars=args.bars, platform_bars=args.platform_bars, rounds=args.rounds)
    levels = measure_throughput(throughput, sizes=args.sizes, seconds=args.seconds, refine=args.refine)
    print_latency(latency, trained, args)
    print_throughput(levels, args)
    print_summary(latency, levels, args, command_line())


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        parser.add_argument("--replay-bars", type=int, required=True)
        worker(parser.parse_args().replay_bars)
        return
    args = parse_args()
    # SIGTERM ends the run as Ctrl-C does: through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trading-bench-") as tmp, contextlib.ExitStack() as cleanup:
        run(args, Path(tmp), cleanup)
    print(f"command: {command_line()}\npeak RSS {peak_rss_mb():,.0f} MB; load average {load_average()} at the end; "
          f"{time.perf_counter() - started:,.0f} s in all")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        # The cleanup has run: the worker stopped, the scratch database dropped, the folder removed.
        print("interrupted", file=sys.stderr)
        sys.exit(130)
