"""django-q2 tasks. They take ids and stay thin: the services decide, sessions.runner runs.

Priorities: django-q2 hands tasks out first in, first out and has no priorities. So a task is a
worker slot rather than an order to run one particular session: every entry of a session into the
queue (submit, resume, retry, requeue) queues one run_session task, and whichever task a free worker
takes starts the most urgent queued session at that moment (services.session_claim: highest
priority first, then the slot's own session, then the oldest). There are always at least as many
slots as queued sessions, so every queued session runs; a slot that finds the queue empty (its
session was cancelled) just ends.

A slot that a cluster killed outright (kill -9, `docker kill`) had already taken from the ORM broker
would come back only after Q_CLUSTER["retry"] (hours). The watchdog gives its session a new slot
instead, as soon as the cluster starts again (services.sessions_dispatch_orphans); running sessions
it recovers with fresh slots (services.sessions_recover_lost).
"""
import os
import time

from sessions import runner, selectors, services
from sessions.services.worker import patiently

# How often a slot whose queued sessions all wait for a full GPU looks again.
GPU_WAIT_SECONDS = 5


def run_session(session_id: int) -> str:
    """Start and run the most urgent queued session (see the module docstring); `session_id` is the
    session this slot was queued for, preferred among equals."""
    while True:
        # A slot that failed for a database restarting would leave its session to the watchdog: wait.
        session = patiently(services.session_claim, preferred=session_id, process_id=os.getpid(),
                            host=services.this_host(), what="a claim")
        if session is not None:
            session = runner.execute(session)
            return f"session {session.pk}: {session.status}"
        if not patiently(selectors.session_queued_exists, what="the queue"):
            return "nothing queued"
        # Everything queued waits for a GPU that runs MAX_GPU_JOBS_PER_DEVICE sessions: hold this slot
        # until one ends, rather than lose it.
        time.sleep(GPU_WAIT_SECONDS)


def recover_lost_sessions() -> str:
    """sessions_recover_lost as a task, for a django-q2 Schedule or a one-off `async_task` (the
    cluster's own watchdog threads run it every WATCHDOG_SECONDS already; see sessions.monitor)."""
    moved = services.sessions_recover_lost()
    return f"recovered {len(moved)} sessions" + "".join(f"; {s.pk}: {s.status}" for s in moved)
