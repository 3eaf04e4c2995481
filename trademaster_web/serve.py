"""The web server: several daphne processes accepting on one port.

    python -m trademaster_web.serve [--host 127.0.0.1] [--port 8000] [--processes N] [-- DAPHNE OPTIONS]

One daphne process is one Python interpreter, whose GIL runs one thread at a time: it never uses more
than one core. This binds N sockets to the port with SO_REUSEPORT and
starts a daphne on each (`daphne --fd`, as under a socket-activating supervisor); the kernel spreads new
connections evenly over them. (One socket shared by all would not: the process that wakes first accepts
every waiting connection, and keep-alive clients then stay with it.) Nothing else has to know: the live
streams keep one database tail per process (sessions.stream) and the login session is in the database.

N defaults to WEB_PROCESSES, else the cores this process may run on. Each daphne says when it is ready
(its application imported, its socket adopted) on a pipe of its own, whose end of file then says that
it is gone. One that dies after it was ready is started again; one that dies before (a bad setting, a
broken import) stops the server with exit status 1, instead of restarting in a loop. Readiness, not a
clock: how long the imports take depends on how busy the machine is, and on a loaded CI machine they once
took longer than the 5 s this used to allow, so that a broken setting restarted daphne forever.

SIGTERM or SIGINT stop the processes with SIGTERM and, after STOP_TIMEOUT seconds, SIGKILL. A daphne told
to stop first closes its open WebSockets with 1001 "going away" (daphne alone drops them without a close
frame, which tells a client nothing about why), then daphne closes the rest.
"""
from __future__ import annotations

import argparse
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from common.machine import usable_cores

APPLICATION = "trademaster_web.asgi:application"
# Connections the kernel holds for the processes to accept: daphne's own listen() would ask for 50,
# which a burst of clients overflows (the client then waits a whole SYN retransmission, 1 s).
BACKLOG = 1024
STOP_TIMEOUT = 15.0  # seconds: longer than daphne's own wait for its applications to close (10 s)
# `python -m trademaster_web.serve --daphne-child FD DAPHNE ARGS`: one daphne of the server, which writes
# READY to the pipe FD once it listens.
CHILD = "--daphne-child"
READY = b"r"
GOING_AWAY = 1001  # RFC 6455: "an endpoint is going away, such as a server going down"
GOING_AWAY_REASON = b"the server is stopping"

STARTED = "serve: http://{host}:{port}/ with {processes} daphne processes"
NOT_STARTED = "serve: daphne {pid} exited with {code} before it was ready; stopping"
RESTARTING = "serve: daphne {pid} exited with {code}; starting another"


def default_processes() -> int:
    if os.environ.get("WEB_PROCESSES"):
        return int(os.environ["WEB_PROCESSES"])
    return usable_cores()


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


@dataclass
class Daphne:
    """A daphne process and the read end of its pipe: READY once it listens, end of file once it is gone.

    A pipe rather than daphne's "Listening on TCP address" log line: the log is daphne's wording, hidden
    at -v 0, and this process would have to read and pass on all of daphne's output to find it. And the
    kernel closes the child's end when the child ends, however it ends (SIGKILL, the OOM killer), so one
    wait on the pipes sees both news, with no polling and no clock. (The child keeps its end from the
    processes it starts: set_inheritable(False) in daphne_child.)"""

    process: subprocess.Popen
    pipe: int
    ready: bool = False


class Server:
    def __init__(self, sockets: list[socket.socket], daphne_args: list[str]):
        self.sockets = sockets
        self.daphne_args = daphne_args
        self.daphnes: list[Daphne | None] = [None] * len(sockets)
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        # ask_stop() writes here, which wakes run() from its wait on the daphnes' pipes.
        self.wakeup, self.wake = os.pipe()
        os.set_blocking(self.wake, False)
        self.selector.register(self.wakeup, selectors.EVENT_READ)

    def start(self, slot: int) -> None:
        """A daphne on the slot's socket; a restarted one takes over the connections waiting there."""
        fd = self.sockets[slot].fileno()
        pipe, child_end = os.pipe()
        command = [sys.executable, "-m", "trademaster_web.serve", CHILD, str(child_end),
                   "--fd", str(fd), *self.daphne_args, APPLICATION]
        # A pool of database connections per daphne (settings: PostgreSQL only); nothing forks there.
        env = {**os.environ, "DATABASE_POOL": os.environ.get("DATABASE_POOL", "1")}
        try:
            process = subprocess.Popen(command, pass_fds=(fd, child_end), env=env)
        finally:
            os.close(child_end)  # the child's alone now, so that the pipe ends with the child
        self.daphnes[slot] = Daphne(process, pipe)
        self.selector.register(pipe, selectors.EVENT_READ, slot)

    def run(self) -> int:
        for slot in range(len(self.daphnes)):
            self.start(slot)
        while not self.stopping:
            for key, _ in self.selector.select():
                if key.data is not None and not self.stopping and (status := self.heard_from(key.data)) is not None:
                    return status
        return 0

    def heard_from(self, slot: int) -> int | None:
        """The daphne of `slot` said it is ready, or ended: None to go on, else the server's exit status."""
        daphne = self.daphnes[slot]
        if os.read(daphne.pipe, 64):
            daphne.ready = True
            return None
        self.selector.unregister(daphne.pipe)
        os.close(daphne.pipe)
        code = daphne.process.wait()  # the pipe ends when the process does: this returns at once
        if not daphne.ready:
            print(NOT_STARTED.format(pid=daphne.process.pid, code=code), file=sys.stderr, flush=True)
            return 1
        print(RESTARTING.format(pid=daphne.process.pid, code=code), file=sys.stderr, flush=True)
        self.start(slot)
        return None

    def ask_stop(self, *_signal_args) -> None:
        # Only a flag and a byte: the loop in run() may be between starting a process and recording it.
        self.stopping = True
        try:
            os.write(self.wake, b"s")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already

    def stop(self) -> None:
        """SIGTERM to every daphne, SIGKILL to those still there after STOP_TIMEOUT."""
        running = [daphne.process for daphne in filter(None, self.daphnes) if daphne.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def daphne_child(ready_fd: int, daphne_argv: list[str]) -> None:
    """Run daphne (`daphne_argv` as its command line), telling the server on `ready_fd` once it listens,
    and closing its open WebSockets with GOING_AWAY when it stops."""
    # The pipe must end with this process, not with a process it starts.
    os.set_inheritable(ready_fd, False)
    # daphne.cli first: daphne.server installs Twisted's asyncio reactor, which must come before the reactor.
    from daphne.cli import CommandLineInterface
    from daphne.server import Server as DaphneServer
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import defer, reactor

    class ChildServer(DaphneServer):
        listening = 0

        def run(self):
            # Registered before daphne's own trigger (in super().run()), which cancels the applications.
            reactor.addSystemEventTrigger("before", "shutdown", self.close_websockets)
            super().run()

        def listen_success(self, port):
            self.listening += 1
            if self.listening == len(self.endpoints):
                os.write(ready_fd, READY)
            # After READY: whoever reads "Listening on ..." in the log may rely on the server knowing.
            super().listen_success(port)

        def close_websockets(self):
            """GOING_AWAY to each open WebSocket; the reactor stops once each is closed (the client answered,
            or autobahn's close handshake timeout, a second, dropped it)."""
            sockets = [p for p in self.connections if isinstance(p, WebSocketProtocol) and p.state == p.STATE_OPEN]
            for protocol in sockets:
                # The frame itself: autobahn's sendClose() (daphne's serverClose) takes only the codes an
                # application may send, 1000 and 3000-4999, and raises on 1001, which Twisted would
                # swallow here (daphne discards its log).
                protocol.sendCloseFrame(code=GOING_AWAY, reasonUtf8=GOING_AWAY_REASON)
            return defer.DeferredList([protocol.is_closed for protocol in sockets])

    class ChildCommandLine(CommandLineInterface):
        server_class = ChildServer

    ChildCommandLine().run(daphne_argv)


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
    print(STARTED.format(host=host, port=port, processes=args.processes), flush=True)
    try:
        return server.run()
    finally:
        server.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == [CHILD]:
        daphne_child(int(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit(main())
