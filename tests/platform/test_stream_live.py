"""The stream across processes: a writer process commits metric rows while a real WebSocket client
(autobahn, in a process of its own) of a real daphne process receives them, all, in order, once,
through a restart of the server.

Harness: bench/harness.py (the same daphne, writer and client its figures come from). On SQLite the
processes share a new database file (the test database is in memory, which no other process sees);
on PostgreSQL they share the test database.
"""

import threading
import time

import pytest
from django.db import connection

from bench.harness import Daphne, create_fixtures, environment, migrate, start_client, start_writer, writer_commits

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

POINTS = 300


@pytest.fixture
def live_env(tmp_path):
    if connection.vendor == "sqlite":
        env = environment(tmp_path, db_name=str(tmp_path / "db.sqlite3"))
        migrate(env)
    else:
        db = connection.settings_dict  # NAME is the test database's by now
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        url = f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        env = environment(tmp_path, db_name=db["NAME"], database_url=url)
    env["TRADEMASTER_STREAM_POLL_SECONDS"] = "0.02"
    return env


class Received:
    """The point ids a client process prints, read as they come."""

    def __init__(self, process):
        self.process = process
        self.ids: list[int] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.ids.append(int(line))

    def wait_for(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.ids) < count:
            assert time.monotonic() < deadline, f"{len(self.ids)} of {count} points arrived"
            time.sleep(0.01)

    def finish(self, timeout: float = 40) -> list[int]:
        assert self.process.wait(timeout=timeout) == 0
        self.reader.join(timeout=5)
        return self.ids


def test_points_written_by_another_process_reach_a_websocket_client_once_in_order_across_a_restart(
    live_env, tmp_path
):
    fixtures = create_fixtures(live_env)
    session, token = fixtures["sessions"][0], fixtures["token"]
    processes = []
    daphne = Daphne(live_env, tmp_path / "daphne-1.log")
    try:
        first = Received(start_client(live_env, port=daphne.port, session=session, token=token, after=0, count=POINTS))
        # 60 epochs of 5 points over ~3 s: the server restarts in the middle of them.
        writer = start_writer(live_env, session=session, points=POINTS, per_commit=5, rate=100)
        processes += [first.process, writer]
        first.wait_for(50)
        daphne.stop()  # the client's connection ends with the server; it exits
        received = first.finish(timeout=15)

        daphne = Daphne(live_env, tmp_path / "daphne-2.log")
        second = Received(start_client(
            live_env, port=daphne.port, session=session, token=token, after=received[-1], count=POINTS - len(received)
        ))
        processes.append(second.process)
        written = [pk for pks, _ in writer_commits(writer) for pk in pks]
        assert len(written) == POINTS
        assert received + second.finish() == written
    finally:
        daphne.stop()
        for process in processes:
            if process.poll() is None:
                process.kill()
