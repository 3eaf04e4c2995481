"""`python -m trademaster_web.serve` and its open WebSockets when it stops: each gets a close frame,
1001 "going away", so that a client knows the server went down (not the network) and reconnects at once.
Real processes: the server, its daphnes, a WebSocket client (bench/harness.py's watcher) of a session's
live stream, on a migrated SQLite file."""
import signal

import pytest

from bench.harness import Serve, create_fixtures, environment, migrate, start_watcher
from trademaster_web.serve import GOING_AWAY

pytestmark = pytest.mark.slow

WAIT = 30  # seconds


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    """(the environment, a session id, an API token of its owner): one database for the module, which its
    tests only read."""
    workdir = tmp_path_factory.mktemp("streams")
    env = environment(workdir, db_name=str(workdir / "db.sqlite3"))
    migrate(env)
    fixtures = create_fixtures(env)
    return env, fixtures["sessions"][0], fixtures["token"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_server_closes_each_open_websocket_with_1001_going_away(streams, tmp_path, stop):
    env, session, token = streams
    server = Serve(env, tmp_path / "serve.log", processes=2)
    watchers = []
    try:
        # Three clients, so that (the kernel spreading them) both daphnes are likely to hold one.
        watchers = [start_watcher(env, port=server.port, session=session, token=token) for _ in range(3)]
        for watcher in watchers:
            assert watcher.stdout.readline() == "open\n"
        server.process.send_signal(stop)
        assert server.process.wait(timeout=WAIT) == 0
        for watcher in watchers:
            out, _ = watcher.communicate(timeout=WAIT)
            assert (watcher.returncode, out) == (0, f"closed {GOING_AWAY}\n"), server.log.read_text()
    finally:
        server.stop()
        for watcher in watchers:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
