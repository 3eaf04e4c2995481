"""`python -m trademaster_web.serve`: several daphne processes on one port, as `make run` and the Docker
image start the web server. Real processes, real sockets, real HTTP (the login page needs no database)."""
import http.client
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from bench.harness import ROOT, Serve, environment
from trademaster_web.serve import NOT_STARTED, RESTARTING

pytestmark = pytest.mark.slow

WAIT = 30  # seconds
# A settings module whose import waits for a line on stdin (the test's gate: as long as the test likes,
# as a slow machine's imports would), then fails.
GATE = "gated settings: waiting for the gate"
GATED_SETTINGS = f"""import sys
print({GATE!r}, flush=True)
sys.stdin.readline()
raise ImportError("a broken setting, found late")
"""


@pytest.fixture
def env(tmp_path):
    return environment(tmp_path, db_name=str(tmp_path / "db.sqlite3"))


@pytest.fixture
def server(env, tmp_path):
    server = Serve(env, tmp_path / "serve.log", processes=2)
    yield server
    server.stop()


def daphnes(server) -> list[psutil.Process]:
    return psutil.Process(server.process.pid).children()


def login_page(connection: http.client.HTTPConnection) -> int:
    connection.request("GET", "/accounts/login/")
    response = connection.getresponse()
    response.read()
    return response.status


def logged(template: str, text: str, **values) -> list[str]:
    """The lines of `text` that `template` (a message constant) makes with `values`, any pid."""
    pattern = re.escape(template.format(pid="PID", **values)).replace("PID", r"\d+")
    return re.findall(pattern, text)


def wait_until(condition, what: str):
    deadline = time.monotonic() + WAIT
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


def test_every_daphne_listens_on_its_own_socket_of_the_port_and_takes_connections(server):
    children = daphnes(server)
    assert len(children) == 2
    for child in children:
        listening = [c for c in child.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
        assert [c.laddr.port for c in listening] == [server.port]

    # 40 keep-alive connections, all open at once: the kernel spreads them over both sockets (the
    # chance that one process gets all 40 is 2**-39).
    connections = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT) for _ in range(40)]
    try:
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(login_page, connections)) == {200}
        for child in children:
            established = [c for c in child.net_connections(kind="tcp") if c.status == psutil.CONN_ESTABLISHED]
            assert established, f"daphne {child.pid} took no connection"
    finally:
        for connection in connections:
            connection.close()


def test_a_daphne_that_dies_right_after_it_listens_is_replaced_and_the_port_keeps_answering(server):
    first, second = daphnes(server)
    # At once: it said it was ready, so its death is a crash to recover from, however soon it came.
    first.send_signal(signal.SIGKILL)

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    try:
        assert login_page(connection) == 200  # the survivor answers meanwhile
    finally:
        connection.close()
    replacement = wait_until(
        lambda: [p for p in daphnes(server) if p.pid not in (first.pid, second.pid)], "no new daphne started")
    assert len(daphnes(server)) == 2
    # The replacement listens on the dead one's socket again.
    wait_until(lambda: any(c.status == psutil.CONN_LISTEN for c in replacement[0].net_connections(kind="tcp")),
               "the new daphne does not listen")
    assert server.process.poll() is None
    assert logged(RESTARTING, server.log.read_text(), code=-signal.SIGKILL)


def test_sigterm_stops_every_daphne_and_exits_0(server):
    children = daphnes(server)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=WAIT) == 0
    for child in children:
        wait_until(lambda child=child: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE,
                   f"{child.pid} runs on")


def test_a_daphne_that_cannot_start_stops_the_server_with_status_1(env, tmp_path):
    env = {**env, "DJANGO_SETTINGS_MODULE": "no_such_settings_module"}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.run(
            [sys.executable, "-m", "trademaster_web.serve", "--port", "0", "--processes", "2"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=WAIT * 2,
        )
    text = log.read_text()
    assert process.returncode == 1, text
    assert logged(NOT_STARTED, text, code=1)
    assert "No module named 'no_such_settings_module'" in text


def test_a_daphne_that_fails_however_long_its_start_took_stops_the_server_with_status_1_once(env, tmp_path):
    (tmp_path / "gated_settings.py").write_text(GATED_SETTINGS)
    env = {**env, "DJANGO_SETTINGS_MODULE": "gated_settings"}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "trademaster_web.serve", "--port", "0", "--processes", "1"],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
    try:
        wait_until(lambda: GATE in log.read_text(), "the daphne did not reach its settings")
        assert process.poll() is None  # it waits for its daphne, however long that takes
        process.stdin.write("open\n")
        process.stdin.close()
        assert process.wait(timeout=WAIT) == 1
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = log.read_text()
    assert text.count(GATE) == 1, text  # not started again
    assert logged(NOT_STARTED, text, code=1), text
    assert "a broken setting, found late" in text


def test_fewer_than_one_process_is_refused_by_name(env):
    process = subprocess.run(
        [sys.executable, "-m", "trademaster_web.serve", "--processes", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT,
    )
    assert process.returncode == 2
    assert "--processes must be at least 1, not 0" in process.stderr


def test_web_processes_sets_the_default(monkeypatch):
    from trademaster_web.serve import default_processes

    monkeypatch.setenv("WEB_PROCESSES", "3")
    assert default_processes() == 3
    monkeypatch.delenv("WEB_PROCESSES")
    assert default_processes() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["0", "two", "-1", ""])
def test_a_bad_thread_count_is_refused_by_name(value):
    from django.core.exceptions import ImproperlyConfigured

    from trademaster_web.asgi import HTTP_THREADS_INVALID, http_threads

    with pytest.raises(ImproperlyConfigured) as refused:
        http_threads({"WEB_HTTP_THREADS": value})

    assert str(refused.value) == HTTP_THREADS_INVALID.format(value=value)


def test_the_thread_count_defaults_to_two_and_can_be_set():
    from trademaster_web.asgi import http_threads

    assert http_threads({}) == 2
    assert http_threads({"WEB_HTTP_THREADS": "6"}) == 6
