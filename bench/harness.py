"""The harness of the live-stream and API benchmarks (bench/stream.py, bench/api.py) and of
tests/platform/test_stream_live.py and test_serve.py: the settings shim, fixtures, daphne and the
multi-process server, a writer process that commits metric points as a worker does, and a real
WebSocket client.

    python bench/harness.py write --session ID --points N [--per-commit K] [--rate R]
    python bench/harness.py client --port P --session ID --token=T --after ID --count N [--timeout S]
    python bench/harness.py watch --port P --session ID --token=T [--timeout S]

are the writer's, the client's and the watcher's processes (started by start_writer, start_client and
start_watcher).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on the path, where bench/engine.py would hide the engine package.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
PYTHON = sys.executable
SETTINGS_MODULE = "stream_bench_settings"
# The project's settings with another database name: the embedded default's SQLite options (IMMEDIATE
# transactions, the lock timeout) stay as they are, which a DATABASE_URL would replace.
SETTINGS_SHIM = """from trademaster_web.settings import *  # noqa: F401,F403
import os

DATABASES["default"]["NAME"] = os.environ["STREAM_BENCH_DB_NAME"]
"""
LISTENING = re.compile(r"Listening on TCP address 127\.0\.0\.1:(\d+)")
WAIT = 30  # seconds: the longest any step may take before the run fails

FIXTURES = """
import json, datetime, django
django.setup()
from django.contrib.auth import get_user_model
from accounts.services import api_token_create
from sessions.models import StrategySession
from strategies.models import Dataset, Strategy
user = get_user_model().objects.create_user(username="streamer", password="not used here")
dataset = Dataset.objects.create(
    name="synthetic", frequency="1d", periods_per_year=252.0, tickers=["A0"], start_date=datetime.date(2000, 1, 3),
    end_date=datetime.date(2005, 10, 1), path="synthetic", checksum="1" * 64, n_bars=1500,
)
strategy = Strategy.objects.create(owner=user, name="stream bench", task="portfolio_management", agent="ppo",
                                   dataset=dataset, config={})
sessions = [StrategySession.objects.create(strategy=strategy, session_type="training").pk for _ in range(%d)]
_, token = api_token_create(user=user, name="stream bench")
print(json.dumps({"sessions": sessions, "token": token}))
"""


def environment(workdir: Path, *, db_name: str, database_url: str | None = None) -> dict:
    """The environment of the processes of one run: the settings shim on the path, the database."""
    (workdir / f"{SETTINGS_MODULE}.py").write_text(SETTINGS_SHIM)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(workdir), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "STREAM_BENCH_DB_NAME": db_name,
        "DJANGO_DEBUG": "0",  # DEBUG keeps every query in memory and is not what production runs
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
        # As `make run` does: exchange keys can be sealed (the fuzzer creates exchange accounts).
        "TRADEMASTER_EXCHANGE_KEY": Fernet.generate_key().decode(),
    }
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def migrate(env: dict) -> None:
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)


def create_fixtures(env: dict, *, sessions: int = 1) -> dict:
    """A user with `sessions` training sessions and an API token: {"sessions": [pk, ...], "token"}."""
    out = subprocess.run(
        [PYTHON, "-c", FIXTURES % sessions], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def stop_process(process: subprocess.Popen, *, timeout: float, kill) -> None:
    """SIGTERM to `process`, then `kill()` if it has not ended after `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill()
            process.wait(timeout=10)


class Daphne:
    """daphne serving trademaster_web.asgi on loopback `port` (0: a free one), in a process of its own."""

    def __init__(self, env: dict, log: Path, *, port: int = 0):
        self.log = log
        self.process = subprocess.Popen(
            [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "trademaster_web.asgi:application"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"),
        )
        deadline = time.monotonic() + WAIT
        while not (found := LISTENING.search(log.read_text())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"daphne did not start:\n{log.read_text()}")
            time.sleep(0.05)
        self.port = int(found.group(1))

    def stop(self) -> None:
        stop_process(self.process, timeout=10, kill=self.process.kill)


class Serve:
    """`python -m trademaster_web.serve` (what `make run` starts): `processes` daphne processes on one
    loopback port (`port`, 0: a free one), in a process group of its own."""

    def __init__(self, env: dict, log: Path, *, processes: int, port: int = 0):
        self.log = log
        self.process = subprocess.Popen(
            [PYTHON, "-m", "trademaster_web.serve", "--port", str(port), "--processes", str(processes)],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + WAIT
        # Up when every daphne says it listens (each on a socket of its own, all of the same port).
        while len(found := LISTENING.findall(log.read_text())) < processes:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.05)
        self.port = int(found[0])

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes have used so far: serve and its daphnes."""
        import psutil

        total = 0.0
        parent = psutil.Process(self.process.pid)
        for process in [parent, *parent.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        # Its daphnes too, should serve itself not end them in time.
        stop_process(self.process, timeout=30, kill=lambda: os.killpg(self.process.pid, signal.SIGKILL))


def start_writer(env: dict, *, session: int, points: int, per_commit: int = 1, rate: float = 0.0) -> subprocess.Popen:
    """A writer process (this file's `write` command); its stdout ends with [[last id, commit time], ...]."""
    return subprocess.Popen(
        [PYTHON, str(Path(__file__).resolve()), "write", "--session", str(session), "--points", str(points),
         "--per-commit", str(per_commit), "--rate", str(rate)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )


def writer_commits(writer: subprocess.Popen) -> list[tuple[list[int], float]]:
    """The writer's commits once it is done: (the ids of the commit, the time after it committed)."""
    out, _ = writer.communicate(timeout=WAIT * 4)
    if writer.returncode != 0:
        raise RuntimeError(f"the writer failed ({writer.returncode})")
    return [(ids, stamp) for ids, stamp in json.loads(out.strip().splitlines()[-1])]


def write(*, session: int, points: int, per_commit: int, rate: float) -> None:
    """The `write` command: what a worker does, `per_commit` metric rows a transaction, as
    sessions.services.worker writes an epoch, at `rate` points a second (0: as fast as it can)."""
    import django

    django.setup()
    from django.db import transaction

    from sessions.models import PerformanceMetric

    commits = []
    start = time.monotonic()
    written = 0
    while written < points:
        n = min(per_commit, points - written)
        with transaction.atomic():
            rows = PerformanceMetric.objects.bulk_create(
                PerformanceMetric(session_id=session, metric_type=f"train/m{i}", value=float(written + i),
                                  epoch=written // per_commit)
                for i in range(n)
            )
        commits.append(([row.pk for row in rows], time.time()))
        written += n
        if rate:
            pause = start + written / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    print(json.dumps(commits))


class StreamClient:
    """A real WebSocket client (autobahn over asyncio) of /ws/sessions/<id>/, recording when each point
    arrives."""

    def __init__(self):
        self.messages: asyncio.Queue = asyncio.Queue()
        self.arrivals: dict[int, float] = {}
        self.point_ids: list[int] = []
        self.close_code = None
        self.closed = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(cls, port: int, *, session: int, token: str, after: int | None = 0) -> StreamClient:
        from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

        client = cls()
        opened = asyncio.get_running_loop().create_future()

        class Protocol(WebSocketClientProtocol):
            def onOpen(self):
                opened.set_result(self)

            def onMessage(self, payload, isBinary):
                arrived = time.time()
                message = json.loads(payload)
                if message.get("type") == "metrics":
                    for point in message["points"]:
                        client.point_ids.append(point["id"])
                        client.arrivals.setdefault(point["id"], arrived)
                client.messages.put_nowait(message)

            def onClose(self, wasClean, code, reason):
                client.close_code = code
                if not opened.done():
                    opened.set_exception(ConnectionError(f"handshake refused: {reason}"))
                if not client.closed.done():
                    client.closed.set_result(code)

        query = "" if after is None else f"?after={after}"
        url = f"ws://127.0.0.1:{port}/ws/sessions/{session}/{query}"
        factory = WebSocketClientFactory(url, headers={"Authorization": f"Bearer {token}"})
        factory.protocol = Protocol
        await asyncio.wait_for(asyncio.get_running_loop().create_connection(factory, "127.0.0.1", port), WAIT)
        client.protocol = await asyncio.wait_for(opened, WAIT)
        return client

    async def next_message(self, timeout: float = WAIT) -> dict:
        return await asyncio.wait_for(self.messages.get(), timeout)

    async def wait_for_points(self, ids: set[int], timeout: float = WAIT) -> None:
        """Until every id of `ids` arrived; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not ids <= self.arrivals.keys():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ids - self.arrivals.keys())} of {len(ids)} points did not arrive")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self.protocol.sendClose()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), 5)
        except asyncio.TimeoutError:
            self.protocol.transport.abort()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def follow(*, port: int, session: int, token: str, after: int, count: int, timeout: float) -> int:
    """The `client` command: print each point id as it arrives, one a line, until `count` arrived (and
    a moment more, so that a duplicate would show), the server closes, or `timeout` (exit status 2)."""
    client = await StreamClient.connect(port, session=session, token=token, after=after)
    printed = 0
    deadline = time.monotonic() + timeout
    done_at = None
    while not client.closed.done():
        if printed < len(client.point_ids):
            print("\n".join(map(str, client.point_ids[printed:])), flush=True)
            printed = len(client.point_ids)
        if done_at is None and printed >= count:
            done_at = time.monotonic() + 0.3
        if done_at is not None and time.monotonic() > done_at:
            await client.close()
            return 0
        if time.monotonic() > deadline:
            return 2
        await asyncio.sleep(0.005)
    if printed < len(client.point_ids):
        print("\n".join(map(str, client.point_ids[printed:])), flush=True)
    return 0


def start_client(env: dict, *, port: int, session: int, token: str, after: int, count: int,
                 timeout: float = WAIT) -> subprocess.Popen:
    """A client process (this file's `client` command). A process of its own: autobahn's asyncio client
    cannot run where daphne's Twisted side of autobahn was imported (a pytest process)."""
    return subprocess.Popen(
        [PYTHON, str(Path(__file__).resolve()), "client", "--port", str(port), "--session", str(session),
         # One word: a token may begin with "-", which argparse would take for an option.
         f"--token={token}", "--after", str(after), "--count", str(count), "--timeout", str(timeout)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )


async def watch(*, port: int, session: int, token: str, timeout: float) -> int:
    """The `watch` command: print "open" once the stream is (its first message came), then "closed CODE"
    when the server closes it; exit status 2 if neither happened within `timeout` seconds."""
    client = await StreamClient.connect(port, session=session, token=token, after=None)
    try:
        await client.next_message(timeout)
        print("open", flush=True)
        code = await asyncio.wait_for(asyncio.shield(client.closed), timeout)
    except asyncio.TimeoutError:
        return 2
    print(f"closed {code}", flush=True)
    return 0


def start_watcher(env: dict, *, port: int, session: int, token: str, timeout: float = WAIT) -> subprocess.Popen:
    """A watcher process (this file's `watch` command), in a process of its own as start_client's."""
    return subprocess.Popen(
        [PYTHON, str(Path(__file__).resolve()), "watch", "--port", str(port), "--session", str(session),
         f"--token={token}", "--timeout", str(timeout)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )


@contextlib.contextmanager
def postgres_database(admin_url: str, prefix: str):
    """A new, empty database on the server of `admin_url`, dropped at the end: (its name, its URL). The
    name is `prefix` and a random suffix: runs on a shared server (other engineers', CI's, a second bench)
    must not drop each other's databases."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name, admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        for name in ("--port", "--session", "--after", "--count"):
            parser.add_argument(name, type=int, required=True)
        parser.add_argument("--token", required=True)
        parser.add_argument("--timeout", type=float, default=WAIT)
        options = parser.parse_args()
        sys.exit(asyncio.run(follow(port=options.port, session=options.session, token=options.token,
                                    after=options.after, count=options.count, timeout=options.timeout)))
    elif sys.argv[1:2] == ["watch"]:
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--session", type=int, required=True)
        parser.add_argument("--token", required=True)
        parser.add_argument("--timeout", type=float, default=WAIT)
        options = parser.parse_args()
        sys.exit(asyncio.run(watch(port=options.port, session=options.session, token=options.token,
                                   timeout=options.timeout)))
    elif sys.argv[1:2] == ["write"]:
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        parser.add_argument("--session", type=int, required=True)
        parser.add_argument("--points", type=int, required=True)
        parser.add_argument("--per-commit", type=int, default=1)
        parser.add_argument("--rate", type=float, default=0.0)
        options = parser.parse_args()
        write(session=options.session, points=options.points, per_commit=options.per_commit, rate=options.rate)
