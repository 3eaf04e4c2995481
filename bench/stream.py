"""Live session streams (/ws/sessions/<id>/) end to end: daphne, a writer process, real WebSocket clients.

    python bench/stream.py [--postgres] [--port 0] [--points 1000] [--rate 200] [--viewers 100]

Starts daphne on loopback port --port (default 0: a free one) against a new SQLite file (the embedded
default's settings), or with --postgres a new database on the local PostgreSQL (BENCH_POSTGRES_URL,
default postgres://postgres@127.0.0.1:5432/postgres to create it from; named stream_bench_<random>, so
that runs sharing the server do not drop each other's, and dropped at the end), creates a user, a
session and an API token, then measures:
  (a) latency: a writer process commits `--points` points one commit each at `--rate` a second and
      stamps each commit; p50/p95/p99 of commit -> arrival at a WebSocket client (same clock);
  (b) throughput: the writer commits as fast as it can (epochs of 100 points, as a training writes
      them); points a second arriving at one client;
  (c) fan-out: `--viewers` clients of one session; each must receive every point once, in order.
Target: p95 < 100 ms.

The harness (settings shim, fixtures, daphne, writer, client) is bench/harness.py.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on the path, where bench/engine.py would hide the engine package.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench.harness import (  # noqa: E402
    WAIT,
    Daphne,
    StreamClient,
    create_fixtures,
    environment,
    migrate,
    percentile,
    postgres_database,
    start_writer,
    writer_commits,
)


async def latency(env: dict, port: int, *, session: int, token: str, points: int, rate: float) -> None:
    client = await StreamClient.connect(port, session=session, token=token)
    await client.next_message()  # the status: the stream is open
    writer = start_writer(env, session=session, points=points, per_commit=1, rate=rate)
    commits = await asyncio.to_thread(writer_commits, writer)
    ids = {pk for pks, _ in commits for pk in pks}
    await client.wait_for_points(ids)
    lags = [(client.arrivals[pk] - stamp) * 1000 for pks, stamp in commits for pk in pks]
    await client.close()
    print(f"(a) latency, {points} points one commit each at {rate:g}/s: "
          f"p50 {percentile(lags, 50):.1f} ms, p95 {percentile(lags, 95):.1f} ms, p99 {percentile(lags, 99):.1f} ms, "
          f"max {max(lags):.1f} ms")


async def throughput(env: dict, port: int, *, session: int, token: str, points: int) -> None:
    client = await StreamClient.connect(port, session=session, token=token)
    await client.next_message()
    start = time.time()
    writer = start_writer(env, session=session, points=points, per_commit=100)
    commits = await asyncio.to_thread(writer_commits, writer)
    ids = {pk for pks, _ in commits for pk in pks}
    await client.wait_for_points(ids, timeout=WAIT * 4)
    elapsed = max(client.arrivals.values()) - start
    written = commits[-1][1] - start
    await client.close()
    print(f"(b) throughput, {points} points in commits of 100 as fast as the writer can: "
          f"{points / elapsed:,.0f} points/s arrive at the client (the writer alone: {points / written:,.0f}/s); "
          f"in order: {client.point_ids == sorted(ids)}")


async def fan_out(env: dict, port: int, *, session: int, token: str, points: int, viewers: int, rate: float) -> None:
    clients = await asyncio.gather(*(StreamClient.connect(port, session=session, token=token) for _ in range(viewers)))
    await asyncio.gather(*(client.next_message() for client in clients))
    writer = start_writer(env, session=session, points=points, per_commit=10, rate=rate)
    commits = await asyncio.to_thread(writer_commits, writer)
    expected = [pk for pks, _ in commits for pk in pks]
    await asyncio.gather(*(client.wait_for_points(set(expected)) for client in clients), return_exceptions=True)
    await asyncio.sleep(0.5)  # anything sent twice would have arrived by now
    lost = sum(len(set(expected) - set(client.point_ids)) for client in clients)
    duplicated = sum(len(client.point_ids) - len(set(client.point_ids)) for client in clients)
    out_of_order = sum(client.point_ids != sorted(client.point_ids) for client in clients)
    stamp = {pk: when for pks, when in commits for pk in pks}
    lags = [(client.arrivals[pk] - stamp[pk]) * 1000 for client in clients for pk in expected if pk in client.arrivals]
    await asyncio.gather(*(client.close() for client in clients))
    print(f"(c) {viewers} viewers of one session, {points} points in commits of 10 at {rate:g}/s: "
          f"lost {lost}, duplicated {duplicated}, out of order {out_of_order} viewers; "
          f"latency p50 {percentile(lags, 50):.1f} ms, p95 {percentile(lags, 95):.1f} ms, "
          f"p99 {percentile(lags, 99):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--port", type=int, default=0, help="daphne's loopback port (default 0: a free one)")
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="points a second in (a) and (c)")
    parser.add_argument("--burst", type=int, default=20000, help="points in (b)")
    parser.add_argument("--viewers", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="stream-bench-") as tmp, contextlib.ExitStack() as cleanup:
        workdir = Path(tmp)
        if args.postgres:
            admin = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
            name, url = cleanup.enter_context(postgres_database(admin, "stream_bench"))
            env = environment(workdir, db_name=name, database_url=url)
            database = f"PostgreSQL (database {name})"
        else:
            env = environment(workdir, db_name=str(workdir / "db.sqlite3"))
            database = "SQLite file"
        migrate(env)
        fixtures = create_fixtures(env, sessions=3)
        (a, b, c), token = fixtures["sessions"], fixtures["token"]
        daphne = Daphne(env, workdir / "daphne.log", port=args.port)
        # Stopped before the database is dropped (ExitStack: last in, first out).
        cleanup.callback(daphne.stop)
        print(f"daphne on 127.0.0.1:{daphne.port}, {database}, "
              f"poll every {os.environ.get('TRADEMASTER_STREAM_POLL_SECONDS', '0.05')} s")
        asyncio.run(latency(env, daphne.port, session=a, token=token, points=args.points, rate=args.rate))
        asyncio.run(throughput(env, daphne.port, session=b, token=token, points=args.burst))
        asyncio.run(fan_out(env, daphne.port, session=c, token=token, points=args.points,
                            viewers=args.viewers, rate=args.rate))


if __name__ == "__main__":
    main()
