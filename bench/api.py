"""The platform's HTTP side under load, and how long a submitted training takes to start.

    python bench/api.py [--postgres] [--port 0] [--requests 10] [--clients 100] [--rates 1 2] [--processes N] [--runs 5]
                        [--endpoints dashboard session api-strategies api-sessions] [--no-saturation]

Starts the web server as `make run` does (`python -m trademaster_web.serve`: one daphne per core, here
--processes) on loopback port --port (default 0: a free one) against a new, migrated SQLite file (the
embedded default's settings), or with --postgres a scratch database "bench_api_<random>" on the local
PostgreSQL (BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres to create it from;
a name of its own, so that runs sharing the server do not drop each other's, and dropped at the end).

Seeds 20 strategies and 50 sessions of one user (each with 300 metric rows and 20 resource samples;
completed ones with a report, some running and queued for the dashboard's active panel), then:

  1. latency: `--clients` concurrent loopback clients (asyncio streams, HTTP/1.1 keep-alive, one
     connection each), each making `--requests` requests of one endpoint, for
       GET /                  the dashboard, with the login session's cookie (a real POST to /accounts/login/)
       GET /sessions/<id>/    a session's page (the 50 seeded sessions in turn), same cookie
       GET /api/strategies    bearer token (accounts.services.api_token_create)
       GET /api/sessions      bearer token
     p50/p95/p99/max latency, errors (non-2xx or exceptions) and requests a second per endpoint. After
     an untimed warm-up: one client alone (the time one request takes); then the clients at each of
     `--rates` requests a second apiece (open loop: a request is due at its time whether or not the
     last one was answered, and its latency counts from then); then back to back (closed loop: the
     most the server does, and the queue that costs). Target: p95 < 100 ms, no errors, for the open
     loop; the closed loop's wait is its clients / its throughput (Little's law), so its lines say that
     and the plan's p95 < 500 ms instead. Each line also
     says the CPU time a request cost the server's processes, the local PostgreSQL's (--postgres) and
     this client: the machine's two cores are shared by all three.
  2. submit to start: with a real `manage.py qcluster` (the project's Q_CLUSTER: 2 workers, ORM broker)
     on the same database, a tiny training (tests/engine/test_trainer.py's tiny_config, 1 epoch) is
     submitted through POST /api/strategies/{id}/sessions `--runs` times, one after another; the time
     from the POST until the API says "running", and until its first epoch's metrics are there.
     Target: < 2 s to running.

Every wait is bounded (bench.harness.WAIT, or the limits below); the server's and the cluster's process
groups are killed, and the scratch database dropped, however the run ends.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on the path, where bench/engine.py would hide the engine package.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench.harness import (  # noqa: E402
    PYTHON,
    SETTINGS_MODULE,
    WAIT,
    Serve,
    environment,
    migrate,
    percentile,
    postgres_database,
)
from trademaster_web.serve import default_processes  # noqa: E402

PG_PREFIX = "bench_api"  # and a random suffix (bench.harness.postgres_database)
# Added to bench.harness's settings shim: the cluster's runs in the bench's folder, not the project's
# var/runs (a fresh database reuses session ids, and a run folder with a checkpoint would be resumed).
SETTINGS_EXTRA = """
from pathlib import Path
TRADEMASTER = {**TRADEMASTER, "RUNS_DIR": Path(os.environ["API_BENCH_RUNS_DIR"])}
"""
ENDPOINTS = ("dashboard", "session", "api-strategies", "api-sessions")  # part 1's, for --endpoints
REQUEST_TIMEOUT = 60  # seconds: one request, however loaded the server
PHASE_TIMEOUT = 600  # seconds: one endpoint's whole load phase
CLUSTER_START = 60  # seconds until the cluster says it is running
RUN_LIMIT = 120  # seconds: one tiny training, from its submission to its end
POLL = 0.025  # seconds between two polls of a submitted session until it runs
POLL_RUNNING = 0.1  # seconds between two polls of it once it runs

# One user with 20 strategies and 50 sessions; a second strategy of the tiny config for the cluster.
FIXTURES = """
import datetime, json, random, sys, django
django.setup()
from django.contrib.auth import get_user_model
from django.db import transaction
from accounts.services import api_token_create
from sessions.models import PerformanceMetric, ResourceUsage, StrategySession
from strategies.models import Dataset
from strategies.services import strategy_create

password = sys.argv[1]
rng = random.Random(7)
user = get_user_model().objects.create_user(username="bench", password=password)
dataset = Dataset.objects.create(
    name="synthetic", frequency="1d", periods_per_year=252.0, tickers=["A0", "A1", "A2", "A3", "A4"],
    start_date=datetime.date(2000, 1, 3), end_date=datetime.date(2005, 10, 1), path="synthetic",
    checksum="1" * 64, n_bars=1500,
)
tiny = {
    "env": {"window": 5, "episode_length": 32},
    "agent_params": {"n_steps": 16, "hidden": [16, 16], "update_epochs": 2},
    "trainer": {"epochs": 1, "steps_per_epoch": 512, "num_envs": 8, "seed": 3, "device": "cpu"},
}
strategies = [strategy_create(owner=user, name=f"bench {i}", task="portfolio_management", agent="ppo",
                              dataset=dataset, params=tiny) for i in range(20)]
trainee = strategy_create(owner=user, name="submit to start", task="portfolio_management", agent="ppo",
                          dataset=dataset, params=tiny)

def report():
    curve = [1.0]
    for _ in range(299):
        curve.append(curve[-1] * (1 + rng.gauss(0.0005, 0.01)))
    peak, drawdown = 0.0, []
    for value in curve:
        peak = max(peak, value)
        drawdown.append(value / peak - 1)
    metrics = {"total_return": curve[-1] - 1, "sharpe": rng.gauss(1, 0.5), "max_drawdown": min(drawdown),
               "volatility": 0.15, "sortino": 1.2, "calmar": 0.8}
    return {"metrics": metrics, "benchmark_metrics": {k: v * 0.7 for k, v in metrics.items()},
            "alpha": 0.02, "beta": 0.9, "equity_curve": curve, "drawdown": drawdown,
            "trades": [{"date": f"2005-{1 + i % 12:02d}-01", "ticker": f"A{i % 5}", "weight": 0.2} for i in range(50)]}

# 50 sessions: 30 completed (with a report), 10 failed, 5 running, 5 queued.
statuses = ["completed"] * 30 + ["failed"] * 10 + ["running"] * 5 + ["queued"] * 5
now = datetime.datetime.now(datetime.timezone.utc)
sessions, active = [], []
with transaction.atomic():
    for i, status in enumerate(statuses):
        strategy = strategies[i % len(strategies)]
        session = StrategySession.objects.create(
            strategy=strategy, session_type="training", status=status, config=strategy.config, attempt=1,
            progress_epoch=30 if status != "queued" else 0, progress_total=30, device="cpu",
            started_at=now, completed_at=now if status in ("completed", "failed") else None,
            result_data={"epochs_done": 30, "report": report()} if status == "completed" else {},
            error="Traceback (most recent call last): ..." if status == "failed" else "",
        )
        epochs = 30 if status != "queued" else 0
        PerformanceMetric.objects.bulk_create(
            PerformanceMetric(session=session, metric_type=f"train/m{m}", value=rng.random(), epoch=epoch)
            for epoch in range(1, epochs + 1) for m in range(10)
        )
        if epochs:
            ResourceUsage.objects.bulk_create(
                ResourceUsage(session=session, cpu_percent=rng.uniform(50, 100), memory_mb=rng.uniform(300, 900))
                for _ in range(20)
            )
        sessions.append(session.pk)
        if status in ("running", "queued"):
            active.append(session.pk)
_, token = api_token_create(user=user, name="api bench")
print(json.dumps({"sessions": sessions, "active": active, "trainee": trainee.pk, "token": token}))
"""

# Before the cluster starts: the seeded running and queued sessions have no worker and no task; a
# worker slot would claim a queued one and the watchdog requeue a running one.
SETTLE = """
import json, sys, django
django.setup()
from sessions.models import StrategySession
StrategySession.objects.filter(pk__in=json.loads(sys.argv[1])).update(status="cancelled")
"""


# A minimal HTTP/1.1 client over asyncio streams (aiohttp and httpx are not installed) -------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive connection to the server on 127.0.0.1:`port`; reopened when the server closed it."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), WAIT)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), 5)
            except (OSError, asyncio.TimeoutError):
                pass
            self.reader = self.writer = None

    async def request(self, method: str, path: str, *, headers: dict | None = None,
                      body: bytes = b"") -> tuple[int, dict[str, list[str]], bytes]:
        """(status, headers by lower-case name, body); HttpError/OSError/TimeoutError when it fails."""
        return await asyncio.wait_for(self._request(method, path, headers or {}, body), REQUEST_TIMEOUT)

    async def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers from daphne
                return bytes(data)
            data += await self.reader.readexactly(size)
            await self.reader.readexactly(2)

    async def _request(self, method, path, headers, body):
        if self.writer is None:
            await self.open()
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Connection: keep-alive"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self.writer.drain()
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            await self.close()
            raise HttpError("the server closed the connection") from None
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        found: dict[str, list[str]] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                found.setdefault(name.strip().lower(), []).append(value.strip())
        if "chunked" in ",".join(found.get("transfer-encoding", [])).lower():
            content = await self._read_chunked()
        elif "content-length" in found:
            content = await self.reader.readexactly(int(found["content-length"][0]))
        else:
            content = await self.reader.read()
            await self.close()
        if "close" in ",".join(found.get("connection", [])).lower() and self.writer is not None:
            await self.close()
        return status, found, content


def cookies_of(headers: dict[str, list[str]]) -> dict[str, str]:
    return dict(value.split(";", 1)[0].split("=", 1) for value in headers.get("set-cookie", []))


async def log_in(port: int, *, username: str, password: str) -> str:
    """A real login: GET the form for its CSRF token, POST it; the Cookie header of the login session."""
    connection = Connection(port)
    try:
        status, headers, page = await connection.request("GET", "/accounts/login/")
        csrf_cookie = cookies_of(headers)["csrftoken"]
        field = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": field}).encode()
        status, headers, _ = await connection.request(
            "POST", "/accounts/login/", body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf_cookie}"},
        )
        session_cookie = cookies_of(headers).get("sessionid")
        if status != 302 or not session_cookie:
            raise RuntimeError(f"login failed: {status}")
        return f"csrftoken={csrf_cookie}; sessionid={session_cookie}"
    finally:
        await connection.close()


# 1. Latency under load -----------------------------------------------------------------------------------


class Endpoint:
    def __init__(self, name: str, paths: list[str], headers: dict):
        self.name, self.paths, self.headers = name, paths, headers


async def load(port: int, endpoint: Endpoint, *, clients: int, requests: int, rate: float | None = None) -> dict:
    """`clients` connections, each making `requests` requests one after another, all at once: back to
    back (closed loop), or with `rate`, each client at `rate` requests a second from a random phase
    (open loop). Open-loop latency counts from when a request was due, not when it could be sent: a
    client kept waiting by a slow answer does not hide the wait (no coordinated omission)."""
    connections = [Connection(port) for _ in range(clients)]
    # Connected first: only the requests are timed.
    for batch in range(0, clients, 25):
        await asyncio.gather(*(c.open() for c in connections[batch:batch + 25]))
    latencies: list[float] = []
    errors: dict[str, int] = {}
    start_line = asyncio.Event()
    rng = random.Random(11)
    phases = [rng.uniform(0, 1 / rate) if rate else 0.0 for _ in range(clients)]
    began = 0.0

    async def client(index: int, connection: Connection) -> None:
        await start_line.wait()
        for n in range(requests):
            path = endpoint.paths[(index * requests + n) % len(endpoint.paths)]
            due = time.perf_counter()
            if rate:
                due = began + phases[index] + n / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                status, _, _ = await connection.request("GET", path, headers=endpoint.headers)
                if not 200 <= status < 300:
                    errors[str(status)] = errors.get(str(status), 0) + 1
            except (HttpError, OSError, asyncio.TimeoutError, ValueError) as error:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                await connection.close()
            latencies.append((time.perf_counter() - due) * 1000)

    tasks = [asyncio.create_task(client(i, c)) for i, c in enumerate(connections)]
    began = time.perf_counter()
    start_line.set()
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), PHASE_TIMEOUT)
    finally:
        elapsed = time.perf_counter() - began
        for task in tasks:
            task.cancel()
        await asyncio.gather(*(c.close() for c in connections))
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


def load_line(name: str, result: dict, *, closed_loop_clients: int = 0) -> str:
    """One endpoint's figures and its verdict against the target (p95 < 100 ms, no errors). In the
    closed loop (`closed_loop_clients` always in flight) the mean wait is clients / throughput whatever
    the server (Little's law): the line says that bound, and the plan's 500 ms, instead."""
    lat = result["latencies"]
    errors = sum(result["errors"].values())
    detail = f" ({', '.join(f'{k}: {v}' for k, v in sorted(result['errors'].items()))})" if errors else ""
    p95 = percentile(lat, 95)
    cpu = ""
    if "server_cpu" in result:
        cpu = f"  CPU/req: server {result['server_cpu'] * 1000 / len(lat):5.1f} ms, "
        if "database_cpu" in result:
            cpu += f"PostgreSQL {result['database_cpu'] * 1000 / len(lat):4.1f} ms, "
        cpu += f"client {result['client_cpu'] * 1000 / len(lat):4.1f} ms"
    rate = len(lat) / result["elapsed"]
    if closed_loop_clients:
        verdict = (f"Little's law: {closed_loop_clients} in flight / {rate:.0f} req/s = "
                   f"{closed_loop_clients / rate * 1000:.0f} ms mean wait; the plan's p95 < 500 ms: "
                   f"{'ok' if p95 < 500 and not errors else 'MISSES'}")
    else:
        verdict = "ok" if p95 < 100 and not errors else "MISSES the target"
    return (f"  {name:<22} n={len(lat):<5} p50 {percentile(lat, 50):7.1f} ms  p95 {p95:7.1f} ms  "
            f"p99 {percentile(lat, 99):7.1f} ms  max {max(lat):7.1f} ms  {rate:6.0f} req/s  "
            f"errors {errors}{detail}{cpu}  {verdict}")


async def measured(server_cpu, *args, **kwargs) -> dict:
    """load(*args, **kwargs) with the CPU time the server's processes, the local PostgreSQL's (when the
    bench runs on it) and this client spent on it."""
    server, database, client = server_cpu(), postgres_cpu(), time.process_time()
    result = await load(*args, **kwargs)
    result["server_cpu"], result["client_cpu"] = server_cpu() - server, time.process_time() - client
    if database is not None:
        result["database_cpu"] = postgres_cpu() - database
    return result


POSTGRES_ON_THIS_MACHINE = False  # main() sets it for --postgres


def postgres_cpu() -> float | None:
    """CPU time (s) of this machine's PostgreSQL processes (server and backends); None without --postgres."""
    if not POSTGRES_ON_THIS_MACHINE:
        return None
    import psutil

    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        if process.info["name"] in ("postgres", "postmaster") and process.info["cpu_times"]:
            total += process.info["cpu_times"].user + process.info["cpu_times"].system
    return total


async def latency_under_load(port: int, endpoints: list[Endpoint], *, clients: int, requests: int,
                             rates: list[float], server_cpu, saturation: bool = True) -> None:
    """Part 1; server_cpu() is the CPU time the server's processes have used so far (s)."""
    # Untimed: a fresh process's first requests import and build what later ones reuse (templates, the
    # API's schemas), and the kernel spreads connections over the processes, so every one is warmed.
    for endpoint in endpoints:
        await load(port, endpoint, clients=min(clients, 20), requests=3)
    print(f"1. latency: one client alone ({requests * 5} requests back to back: the time one request takes)")
    for endpoint in endpoints:
        result = await measured(server_cpu, port, endpoint, clients=1, requests=requests * 5)
        print(load_line(endpoint.name, result), flush=True)
    for rate in rates:
        print(f"1. latency under load: {clients} concurrent clients, each {rate:g} request(s) a second "
              f"({clients * rate:g} req/s offered), {requests} requests each, keep-alive (target p95 < 100 ms, "
              f"no errors)")
        for endpoint in endpoints:
            result = await measured(server_cpu, port, endpoint, clients=clients, requests=requests, rate=rate)
            print(load_line(endpoint.name, result), flush=True)
    if not saturation:
        return
    print(f"1. saturation: {clients} concurrent clients x {requests} requests each, back to back (closed loop: "
          f"each sends its next request as soon as the last is answered; what the server can do at most)")
    for endpoint in endpoints:
        result = await measured(server_cpu, port, endpoint, clients=clients, requests=requests)
        print(load_line(endpoint.name, result, closed_loop_clients=clients), flush=True)


# 2. Submit to start --------------------------------------------------------------------------------------


class Cluster:
    """`manage.py qcluster` in a process group of its own; stop() kills the whole group (sentinel,
    monitor, pusher, workers): a graceful stop would wait for a running training."""

    def __init__(self, env: dict, log: Path):
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [PYTHON, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + CLUSTER_START
        while "running." not in log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the cluster did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: pgid == pid
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


async def submit_once(port: int, *, strategy: int, token: str) -> dict:
    auth = {"Authorization": f"Bearer {token}"}
    connection = Connection(port)
    try:
        await connection.open()
        began = time.perf_counter()
        status, _, body = await connection.request(
            "POST", f"/api/strategies/{strategy}/sessions", body=b"{}",
            headers={**auth, "Content-Type": "application/json"},
        )
        posted = time.perf_counter() - began
        if status != 201:
            raise RuntimeError(f"submit refused: {status} {body[:300]!r}")
        pk = json.loads(body)["id"]
        deadline = time.monotonic() + RUN_LIMIT

        async def poll(path: str, done, interval: float):
            # Until done(answer); the time since the POST when it was.
            while time.monotonic() < deadline:
                _, _, body = await connection.request("GET", path, headers=auth)
                answer = json.loads(body)
                if done(answer):
                    return time.perf_counter() - began, answer
                await asyncio.sleep(interval)
            raise TimeoutError(f"session {pk}: {path} did not change within {RUN_LIMIT} s")

        # Finely until it runs; then more slowly, so that the polls take little CPU from the training.
        running, session = await poll(f"/api/sessions/{pk}", lambda s: s["status"] not in ("pending", "queued"), POLL)
        if session["status"] not in ("running", "completed"):
            raise RuntimeError(f"session {pk} is {session['status']}: {session['error'][-2000:]}")
        first_epoch, _ = await poll(f"/api/sessions/{pk}/metrics?limit=1", lambda page: page["items"], POLL_RUNNING)
        completed, session = await poll(
            f"/api/sessions/{pk}", lambda s: s["status"] in ("completed", "failed", "cancelled"), POLL_RUNNING)
        if session["status"] != "completed":
            raise RuntimeError(f"session {pk} ended {session['status']}: {session['error'][-2000:]}")
        return {"session": pk, "post": posted, "running": running, "first_epoch": first_epoch, "completed": completed}
    finally:
        await connection.close()


async def submit_to_start(port: int, *, strategy: int, token: str, runs: int) -> None:
    print(f"2. submit to start: a real `manage.py qcluster` (2 workers, ORM broker), {runs} tiny trainings "
          f"(1 epoch) submitted one after another through POST /api/strategies/{strategy}/sessions, polled "
          f"every {POLL * 1000:.0f} ms through the API until it runs, then every {POLL_RUNNING * 1000:.0f} ms "
          f"(target < 2 s to running)")
    results = []
    for n in range(runs):
        result = await submit_once(port, strategy=strategy, token=token)
        results.append(result)
        print(f"  run {n + 1}: session {result['session']}: POST {result['post'] * 1000:.0f} ms, running after "
              f"{result['running']:.2f} s, first epoch's metrics after {result['first_epoch']:.2f} s, completed "
              f"after {result['completed']:.2f} s", flush=True)
    running = [r["running"] for r in results]
    first = [r["first_epoch"] for r in results]
    print(f"  to running:      median {statistics.median(running):.2f} s, max {max(running):.2f} s  "
          f"{'ok' if max(running) < 2 else 'MISSES the target'}")
    print(f"  to first epoch:  median {statistics.median(first):.2f} s, max {max(first):.2f} s")


# The bench -----------------------------------------------------------------------------------------------


def run_script(env: dict, script: str, *args: str) -> str:
    out = subprocess.run([PYTHON, "-c", script, *args], cwd=ROOT, env=env, check=True, timeout=120,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def bench(workdir: Path, env: dict, args: argparse.Namespace, database: str) -> None:
    runs_dir = workdir / "runs"
    env = {**env, "API_BENCH_RUNS_DIR": str(runs_dir)}
    with (workdir / f"{SETTINGS_MODULE}.py").open("a") as shim:
        shim.write(SETTINGS_EXTRA)
    started = time.monotonic()
    migrate(env)
    password = secrets.token_urlsafe(16)
    fixtures = json.loads(run_script(env, FIXTURES, password))
    print(f"{database}: migrated and seeded (20 strategies, 50 sessions x 300 metric rows) "
          f"in {time.monotonic() - started:.1f} s", flush=True)
    server = Serve(env, workdir / "serve.log", processes=args.processes, port=args.port)
    cluster = None
    try:
        print(f"python -m trademaster_web.serve on 127.0.0.1:{server.port}: {args.processes} daphne process(es) "
              f"(`make run` starts one per core: {default_processes()} here), DEBUG off, {database}")
        cookie = asyncio.run(log_in(server.port, username="bench", password=password))
        bearer = {"Authorization": f"Bearer {fixtures['token']}"}
        endpoints = {
            "dashboard": Endpoint("GET /", ["/"], {"Cookie": cookie}),
            "session": Endpoint("GET /sessions/<id>/", [f"/sessions/{pk}/" for pk in fixtures["sessions"]],
                                {"Cookie": cookie}),
            "api-strategies": Endpoint("GET /api/strategies", ["/api/strategies"], bearer),
            "api-sessions": Endpoint("GET /api/sessions", ["/api/sessions"], bearer),
        }
        asyncio.run(latency_under_load(server.port, [endpoints[name] for name in args.endpoints],
                                       clients=args.clients, requests=args.requests, rates=args.rates,
                                       server_cpu=server.cpu_seconds, saturation=args.saturation))
        if args.runs:
            run_script(env, SETTLE, json.dumps(fixtures["active"]))
            cluster = Cluster(env, workdir / "qcluster.log")
            asyncio.run(submit_to_start(server.port, strategy=fixtures["trainee"], token=fixtures["token"],
                                        runs=args.runs))
    except BaseException:
        for name in ("serve.log", "qcluster.log"):
            if (workdir / name).exists():
                print(f"--- the end of {name}:\n{(workdir / name).read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        if cluster is not None:
            cluster.stop()
        server.stop()


def main() -> None:
    global POSTGRES_ON_THIS_MACHINE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--port", type=int, default=0, help="the server's loopback port (default 0: a free one)")
    parser.add_argument("--requests", type=int, default=10, help="requests of each client, per endpoint")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rates", type=float, nargs="*", default=[1.0, 2.0],
                        help="requests a second of each client in the open-loop phases (none: skip them)")
    parser.add_argument("--processes", type=int, default=default_processes(),
                        help="daphne processes (default: as `make run`, one per core)")
    parser.add_argument("--runs", type=int, default=5, help="submissions in part 2 (0: skip it)")
    parser.add_argument("--endpoints", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS),
                        help="the endpoints of part 1 (default: all)")
    parser.add_argument("--saturation", action=argparse.BooleanOptionalAction, default=True,
                        help="end part 1 with the closed loop (default: yes)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        workdir = Path(tmp)
        if args.postgres:
            admin = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
            POSTGRES_ON_THIS_MACHINE = urlsplit(admin).hostname in ("127.0.0.1", "localhost", "::1")
            with postgres_database(admin, PG_PREFIX) as (name, url):
                env = environment(workdir, db_name=name, database_url=url)
                bench(workdir, env, args, f"PostgreSQL (database {name})")
        else:
            env = environment(workdir, db_name=str(workdir / "db.sqlite3"))
            bench(workdir, env, args, "SQLite file")


if __name__ == "__main__":
    main()
