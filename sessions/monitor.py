"""Background threads of the worker processes: a session's heartbeat and resource samples while it
runs, and the watchdog that recovers sessions whose worker is gone.

Threads rather than the training loop: an epoch can outlast HEARTBEAT_TIMEOUT_SECONDS, and the
watchdog must run while every worker is busy training. Each thread has its own database connection
and closes it when it ends.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from datetime import UTC, datetime

import psutil
from django import db
from django.conf import settings
from django.utils import timezone

from sessions import services
from sessions.models import StrategySession
from sessions.services.watchdog import sessions_dispatch_orphans
from sessions.services.worker import DATABASE_DOWN, one_line

log = logging.getLogger(__name__)

_MB = 1024 * 1024
# Resource samples kept while the database does not answer: a day of them at one every 5 s, a few MB.
MAX_PENDING_SAMPLES = 20_000


class GpuProbe:
    """Utilisation and memory of the CUDA device a session runs on, through NVML.

    Readings are None on the CPU and wherever NVML is missing: pynvml.nvmlInit() raises without an
    NVIDIA driver, and a sample without GPU numbers is better than a crashed worker. NVML numbers
    devices as the driver does; with CUDA_VISIBLE_DEVICES set, cuda:N may be another index there.
    """

    def __init__(self, device: str):
        self._pynvml = self._handle = None
        self.total_mb: float | None = None  # the device's memory, for the resource_limit alert
        if not device.startswith("cuda"):
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._pynvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(int(device.partition(":")[2] or 0))
            self.total_mb = pynvml.nvmlDeviceGetMemoryInfo(self._handle).total / _MB
        except Exception as error:  # NVMLError, ImportError, a bad index: all mean "no readings"
            log.info("no GPU readings for %s: %s", device, error)
            self._handle = self.total_mb = None

    def read(self, pid: int) -> tuple[float | None, float | None]:
        """(utilisation %, memory MB used by `pid`, or by the whole device when NVML cannot say)."""
        if self._handle is None:
            return None, None
        nvml = self._pynvml
        try:
            percent = float(nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
            used = [p.usedGpuMemory for p in nvml.nvmlDeviceGetComputeRunningProcesses(self._handle)
                    if p.pid == pid and p.usedGpuMemory is not None]
            memory = used[0] if used else nvml.nvmlDeviceGetMemoryInfo(self._handle).used
            return percent, memory / _MB
        except Exception as error:
            log.warning("GPU reading failed: %s", error)
            return None, None

    def close(self) -> None:
        if self._pynvml is not None:
            try:
                self._pynvml.nvmlShutdown()
            except Exception:
                pass


class ResourceSampler:
    """What this process uses: CPU % since the previous sample (can pass 100 on several cores), resident
    memory, disk bytes read and written since the previous sample, and the GPU's readings.

    Network traffic is left at 0: psutil counts it per machine, not per process.
    """

    def __init__(self, device: str, pid: int | None = None):
        self.pid = pid or os.getpid()
        self.process = psutil.Process(self.pid)
        self.process.cpu_percent(None)  # the first call only sets the reference point
        self._io = self._io_bytes()
        self.gpu = GpuProbe(device)
        # The machine's memory, against which a session's resident memory is judged (sessions.alerts).
        self.memory_total_mb = psutil.virtual_memory().total / _MB

    def sample(self) -> dict[str, float | None]:
        io = self._io_bytes()
        disk, self._io = max(0, io - self._io), io
        gpu_percent, gpu_memory = self.gpu.read(self.pid)
        return {
            "cpu_percent": self.process.cpu_percent(None),
            "memory_mb": self.process.memory_info().rss / _MB,
            "disk_io_mb": disk / _MB,
            "gpu_percent": gpu_percent,
            "gpu_memory_mb": gpu_memory,
        }

    def _io_bytes(self) -> int:
        try:
            counters = self.process.io_counters()
        except (AttributeError, psutil.Error):  # not on macOS; not for another user's process
            return 0
        return counters.read_bytes + counters.write_bytes

    def close(self) -> None:
        self.gpu.close()


class Heartbeat:
    """While a session runs (`with Heartbeat(session):`), beat its heartbeat every HEARTBEAT_SECONDS and
    store a ResourceUsage sample every RESOURCE_SAMPLE_SECONDS, from a daemon thread.

    Stops beating once the session is no longer this worker's; a failed write (the database
    restarting) is logged and tried again at the next tick, never raised into the training. Samples
    are taken on time whether or not the database answers, and kept (up to MAX_PENDING_SAMPLES) until
    they can be written, each with the time it was taken.
    """

    def __init__(self, session: StrategySession):
        self.session = session
        self.beat_seconds = float(settings.TRADEMASTER["HEARTBEAT_SECONDS"])
        self.sample_seconds = float(settings.TRADEMASTER["RESOURCE_SAMPLE_SECONDS"])
        self.pending: deque[tuple[datetime, dict]] = deque(maxlen=MAX_PENDING_SAMPLES)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{session.pk}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        sampler = self._try("starting the resource sampler", ResourceSampler, self.session.device)
        now = time.monotonic()
        next_beat, next_sample = now + self.beat_seconds, now + self.sample_seconds
        try:
            while not self._stop.wait(max(0.0, min(next_beat, next_sample) - time.monotonic())):
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + self.beat_seconds
                    if self._try("the heartbeat", services.session_heartbeat, session=self.session) is False:
                        return  # no longer this worker's session: its new worker beats now
                if now >= next_sample and sampler is not None:
                    next_sample = now + self.sample_seconds
                    self.take_sample(sampler)
                    self._try("writing resource samples", self.write_samples, sampler)
        finally:
            if sampler is not None:
                self._try("writing resource samples", self.write_samples, sampler)
                sampler.close()
            db.connection.close()

    def take_sample(self, sampler: ResourceSampler) -> None:
        try:
            self.pending.append((timezone.now(), sampler.sample()))
        except Exception:  # psutil: a reading missed, not a reason to stop sampling
            log.warning("session %s: a resource sample failed", self.session.pk, exc_info=True)

    def write_samples(self, sampler: ResourceSampler) -> None:
        """Write the samples taken and not yet written, oldest first; those a failed write leaves stay."""
        while self.pending:
            recorded_at, sample = self.pending[0]
            services.resource_usage_record(
                session=self.session, sample=sample, recorded_at=recorded_at,
                memory_total_mb=sampler.memory_total_mb, gpu_total_mb=sampler.gpu.total_mb,
            )
            self.pending.popleft()

    def _try(self, what: str, function, *args, **kwargs):
        # Whatever fails here (the database restarting, psutil) must not stop the beats that keep the
        # watchdog from taking a healthy session away: log it and try again at the next tick.
        try:
            return function(*args, **kwargs)
        except DATABASE_DOWN as error:
            # One line, not a traceback a tick: the session's log (on its page) says what waits, and why.
            log.warning("session %s: %s waits for the database: %s", self.session.pk, what, one_line(str(error)))
        except Exception:
            log.warning("session %s: %s failed", self.session.pk, what, exc_info=True)
        db.close_old_connections()
        return None


# ------------------------------------------------------------------------------------- the watchdog

def start_watchdog(**kwargs) -> threading.Thread:
    """Receiver of django-q2's post_spawn, sent in every new worker process of `manage.py qcluster`:
    start a daemon thread there that sweeps at once (a cluster starting after a crash finds what the
    crash left) and every TRADEMASTER["WATCHDOG_SECONDS"] after: sessions_recover_lost for running
    sessions whose worker is gone, sessions_dispatch_orphans for queued ones whose worker slot is.

    One per worker process: a cluster keeps watching while any of its workers lives, and a worker
    killed with kill -9 is replaced, watchdog included. Several sweeps at once are harmless: each move
    goes through session_transition or a row lock, and the first one wins.
    """
    thread = threading.Thread(target=_watch, args=(cluster_started(),), name="session-watchdog", daemon=True)
    thread.start()
    return thread


def cluster_started() -> datetime:
    """When the cluster of this worker process started: its parent, django-q2's sentinel, which starts
    the process that takes tasks from the broker. Everything this cluster took, it took after that."""
    return datetime.fromtimestamp(psutil.Process(os.getppid()).create_time(), tz=UTC)


def _watch(started: datetime) -> None:
    interval = float(settings.TRADEMASTER["WATCHDOG_SECONDS"])
    reachable_since, reachable = None, True
    while True:
        try:
            # This thread lives as long as its worker: honour CONN_MAX_AGE and the health checks.
            db.close_old_connections()
            if not reachable:
                reachable_since, reachable = timezone.now(), True
            _sweep(started, reachable_since)
        except DATABASE_DOWN:
            # No worker can beat while the database is away: once it is back, heartbeats are judged
            # from then (sessions_recover_lost's reachable_since), or every session would look lost.
            reachable = False
            log.exception("the session watchdog could not reach the database; trying again in %s s", interval)
        except Exception:
            log.exception("the session watchdog's sweep failed; trying again in %s s", interval)
        time.sleep(interval)


def _sweep(started: datetime, reachable_since: datetime | None) -> None:
    for session in services.sessions_recover_lost(reachable_since=reachable_since):
        log.warning("session %s was lost (%s): now %s", session.pk, session.error, session.status)
    sessions_dispatch_orphans(cluster_started=started)
