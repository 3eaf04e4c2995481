"""The web server: several daphne processes accepting on one port.

    python -m trademaster_web.serve [--host 127.0.0.1] [--port 8000] [--processes N] [-- DAPHNE OPTIONS]

One daphne process is one Python interpreter, whose GIL runs one thread at a time: it never uses more
than one core. This binds N sockets to the port with SO_REUSEPORT and
starts a daphne on each (`daphne --fd`, as under a socket-activating supervisor); the kernel spreads new
connections evenly over them. (One socket shared by all would not: the process that wakes first accepts
every waiting connection, and keep-alive clients then stay with it.) Nothing else has to know: the live
streams keep one database tail per process (sessions.stream) and the login session is in the database.

N defaults to WEB_PROCESSES, else the cores this process may run on. A daphne that dies is started
again; one that dies within STARTUP_GRACE seconds of its start (a bad setting, a broken import) stops
the server with exit status 1, instead of restarting in a loop. SIGTERM or SIGINT stop the processes
with SIGTERM (daphne closes its connections) and, after STOP_TIMEOUT seconds, SIGKILL.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

APPLICATION = "trademaster_web.asgi:application"
# Connections the kernel holds for the processes to accept: daphne's own listen() would ask for 50,
# which a burst of clients overflows (the client then waits a whole SYN retransmission, 1 s).
BACKLOG = 1024
STARTUP_GRACE = 5.0  # seconds
STOP_TIMEOUT = 15.0  # seconds: longer than daphne's own wait for its applications to close (10 s)
POLL = 0.2  # seconds between two checks of the processes


def default_processes() -> int:
    if os.environ.get("WEB_PROCESSES"):
        return int(os.environ["WEB_PROCESSES"])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def listen(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one port (the first one's, when `port` is 0)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # daphne's --fd adopts an IPv4 socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        port = sock.getsockname()[1]
        sock.listen(BACKLOG)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


class Server:
    def __init__(self, sockets: list[socket.socket], daphne_args: list[str]):
        self.sockets = sockets
        self.daphne_args = daphne_args
        self.slots: list[tuple[subprocess.Popen, float] | None] = [None] * len(sockets)
        self.stopping = False

    def start(self, slot: int) -> None:
        """A daphne on the slot's socket; a restarted one takes over the connections waiting there."""
        fd = self.sockets[slot].fileno()
        command = [sys.executable, "-m", "daphne", "--fd", str(fd), *self.daphne_args, APPLICATION]
        # A pool of database connections per daphne (settings: PostgreSQL only); nothing forks there.
        env = {**os.environ, "DATABASE_POOL": os.environ.get("DATABASE_POOL", "1")}
        self.slots[slot] = (subprocess.Popen(command, pass_fds=(fd,), env=env), time.monotonic())

    def run(self) -> int:
        for slot in range(len(self.slots)):
            self.start(slot)
        while not self.stopping:
            for slot, (process, started) in enumerate(self.slots):
                code = process.poll()
                if code is None or self.stopping:
                    continue
                if time.monotonic() - started < STARTUP_GRACE:
                    print(f"serve: daphne {process.pid} exited with {code} on start; stopping", file=sys.stderr)
                    return 1
                print(f"serve: daphne {process.pid} exited with {code}; starting another", file=sys.stderr)
                self.start(slot)
            time.sleep(POLL)
        return 0

    def ask_stop(self, *_signal_args) -> None:
        # Only a flag: the loop in run() may be between starting a process and recording it.
        self.stopping = True

    def stop(self) -> None:
        """SIGTERM to every daphne, SIGKILL to those still there after STOP_TIMEOUT."""
        running = [process for process, _ in filter(None, self.slots) if process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="an IPv4 address (daphne's --fd adopts IPv4 sockets)")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port (printed)")
    parser.add_argument("--processes", type=int, default=default_processes())
    parser.add_argument("daphne_args", nargs="*", help="after --: passed to every daphne")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error(f"--processes must be at least 1, not {args.processes}")

    sockets = listen(args.host, args.port, args.processes)
    host, port = sockets[0].getsockname()[:2]
    server = Server(sockets, args.daphne_args)
    signal.signal(signal.SIGTERM, server.ask_stop)
    signal.signal(signal.SIGINT, server.ask_stop)
    print(f"serve: http://{host}:{port}/ with {args.processes} daphne processes", flush=True)
    try:
        return server.run()
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
