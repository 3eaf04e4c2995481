"""The trading process (`manage.py trade`): runs every active deployment it holds the lease of, bar by bar.

One loop serves all its deployments: each feed says when its next bar is due, and the loop sleeps until
the first is (at most TRADE_IDLE_SECONDS, so new deployments, pauses and stops are seen). A bar is one
transaction on the deployment's locked row: the lease and the status are checked, the bar is traded
(engine.live.trader.trade_bar, every order through risk.controller.validate_trading_request), and the
record, the paper broker's book and the bar's mark are written together. A process killed mid-bar
leaves nothing of that bar; the next holder redoes it with the same client order ids, so a broker that
already placed an order answers with it instead of placing it twice.

Leases: a process claims a deployment nobody holds, or one whose holder's lease expired (it stopped
beating), or whose holder ran on this host and is gone. It reconciles the record with the broker
before trading again, and halts the deployment with a critical event when they disagree.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
import uuid
from datetime import timedelta
from types import SimpleNamespace

import torch
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from engine.live.policy import orders_for_targets
from engine.live.trader import BarOutcome, send, trade_bar
from risk.controller import KillLevel
from risk.models import KillSwitch
from risk.services import emergency_stop, kill_level_for, limits_for
from sessions.services.watchdog import process_alive, this_host
from sessions.services.worker import one_line
from trading.guard import Guard
from trading.ledger import adopt_opening_positions, mark, record_updates
from trading.models import ACTIVE_DEPLOYMENT_STATUSES, Deployment, DeploymentEvent, DeploymentStatus, TradingWorker
from trading.runtime import DeploymentBroken, Runtime, build_runtime, reconcile
from trading.services.transitions import DeploymentTransitionConflict, deployment_transition

log = logging.getLogger(__name__)

_S = DeploymentStatus
RECONCILE_FAILED = "halted: its record and its broker disagree: {problems}"
REPLAY_OVER = "the replay reached the end of its period"
TAKEN_OVER = "taken over by {owner} on {host} (pid {pid}) from {previous}"
STARTED = "started by {owner} on {host} (pid {pid})"
FAILED_TO_BUILD = "cannot run: {error}"
BREACHED = (
    "a loss limit was breached (equity {equity:,.2f}; at the day's start {start:,.2f}, at its peak {peak:,.2f}): "
    "tripped at {level} automatically"
)


class TradingProcess:
    """One `manage.py trade`: its identity (owner), its runtimes, and the loop."""

    def __init__(self, *, owner: str | None = None, idle_seconds: float | None = None):
        cfg = settings.TRADEMASTER
        self.owner = owner or uuid.uuid4().hex[:16]
        self.host, self.pid = this_host(), os.getpid()
        self.idle_seconds = float(cfg["TRADE_IDLE_SECONDS"] if idle_seconds is None else idle_seconds)
        self.lease = timedelta(seconds=cfg["TRADE_LEASE_SECONDS"])
        self.heartbeat_every = float(cfg["TRADE_HEARTBEAT_SECONDS"])
        self.runtimes: dict[int, Runtime] = {}
        self._next_beat = self._next_claim = 0.0
        # Halted deployments held: reconciled again before their first bar once a person resumes them.
        self._halted: set[int] = set()

    # The loop ------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, on_ready=None) -> None:
        """Tick until `stop` is set; `on_ready()` is called after the first tick (registered, first
        deployments claimed)."""
        torch.set_num_threads(1)  # one small forward pass per bar; the cores are the trainings'
        log.info("trading process %s on %s (pid %s) started", self.owner, self.host, self.pid)
        try:
            wait = self.tick()
            if on_ready is not None:
                on_ready()
            while not stop.wait(wait):
                wait = self.tick()
        finally:
            self.release_all()
            log.info("trading process %s stopped", self.owner)

    def tick(self) -> float:
        """One pass: beat, claim, then each held deployment's due bar. Returns how long to sleep."""
        if time.monotonic() >= self._next_beat:
            self.heartbeat()
            self._next_beat = time.monotonic() + self.heartbeat_every
        if time.monotonic() >= self._next_claim:
            self.claim()
            self._next_claim = time.monotonic() + self.idle_seconds
        statuses = self._statuses()
        self._flatten_where_tripped(statuses)
        waits = [self.idle_seconds]
        for pk in list(self.runtimes):
            waits.append(self._advance(pk, statuses.get(pk)))
        return max(0.0, min(waits))

    def _advance(self, pk: int, status: str | None) -> float:
        runtime = self.runtimes[pk]
        if status is None or status not in ACTIVE_DEPLOYMENT_STATUSES and status != _S.HALTED:
            self._drop(pk)  # stopped, failed, deleted, or no longer ours
            return self.idle_seconds
        if status == _S.HALTED:
            self._halted.add(pk)
        if status != _S.RUNNING:
            return self.idle_seconds
        if pk in self._halted and not self._reconciled_again(pk):
            return self.idle_seconds
        bar = runtime.feed.poll()
        if bar is None:
            if runtime.feed.finished:
                self._finish_replay(pk)
            return runtime.feed.seconds_to_next()
        try:
            self.trade(pk, bar)
        except Exception:
            # The bar's transaction rolled back, but the runtime's broker and feed moved on: build them
            # again from the record (and reconcile) before the next bar.
            log.exception("deployment %s: bar %s failed; rebuilding its runtime", pk, bar.index)
            self._drop(pk, release=False)
        return 0.0

    # One bar -------------------------------------------------------------------------------------

    def trade(self, pk: int, bar) -> None:
        runtime = self.runtimes[pk]
        with transaction.atomic():
            deployment = Deployment.objects.select_for_update().filter(pk=pk).first()
            if deployment is None or deployment.lease_owner != self.owner:
                self.runtimes.pop(pk, None)
                return
            if deployment.status != _S.RUNNING or bar.index <= _last_bar(deployment):
                return

            guard = Guard(deployment, runtime, bar, limits=limits_for(deployment), level=kill_level_for(deployment))
            updates = self._cancel_open(runtime) if guard.level >= KillLevel.HALT else []
            # PAUSE places nothing; HALT and FLATTEN let the policy decide and the limits clip its targets
            # (toward flat, never growing; to flat).
            decide = not runtime.feed.finished and guard.level != KillLevel.PAUSE
            outcome = trade_bar(bar, feed=runtime.feed, policy=runtime.policy, broker=runtime.broker,
                                check=guard.check, record=updates.append, id_prefix=runtime.id_prefix,
                                decide=decide, adjust=guard.adjust)
            # One write of the bar's whole record: a few statements however many orders it made.
            record_updates(deployment, updates, bar, refused=guard.refused, marks=True,
                           fresh=f"{runtime.id_prefix}b{bar.index}s")
            guard.record()
            fields = mark(deployment, bar, equity=outcome.equity, cash=outcome.account.cash)
            now = timezone.now()
            fields.update(last_bar=bar.index, last_bar_time=bar.time, bars_done=deployment.bars_done + 1,
                          heartbeat_at=now, lease_expires_at=now + self.lease, updated_at=now)
            if runtime.paper:
                fields["broker_state"] = runtime.broker.state()
            Deployment.objects.filter(pk=pk).update(**fields)
            self._trip_on_breach(deployment, guard, outcome.account)
        runtime.last_bar = bar
        if runtime.paper:
            # What the bar finished is in the record now: the broker keeps only what is still open, so
            # its saved book stays the size of its open orders, not of its history.
            runtime.broker.prune()

    def _flatten_where_tripped(self, statuses: dict[int, str]) -> None:
        """Act on a HALT or FLATTEN switch now, not at the next bar: every held deployment it reaches
        cancels its open orders, and under FLATTEN closes its positions (one query a tick while no such
        switch is latched)."""
        switches = list(KillSwitch.objects.filter(lifted_at__isnull=True, level__in=["halt", "flatten"])
                        .values_list("scope", "user_id", "deployment_id", "level"))
        if not switches:
            return
        for pk, runtime in list(self.runtimes.items()):
            levels = {level for scope, user, deployment, level in switches
                      if scope == "global" or (scope == "user" and user == runtime.owner_id)
                      or (scope == "deployment" and deployment == pk)}
            if not levels or statuses.get(pk) not in (_S.RUNNING, _S.PAUSED, _S.HALTED):
                continue
            try:
                self.flatten(pk, close="flatten" in levels)
            except Exception:
                log.exception("deployment %s: acting on its kill switch failed; again at the next tick", pk)
                self._drop(pk, release=False)

    def _cancel_open(self, runtime: Runtime) -> list:
        """HALT and FLATTEN cancel every open order first."""
        return [runtime.broker.cancel(order.client_order_id) for order in runtime.broker.open_orders()]

    def _trip_on_breach(self, deployment: Deployment, guard: Guard, account) -> None:
        level = guard.breached(account)
        if level is None:
            return
        state = guard.state(account)
        reason = BREACHED.format(level=level, equity=state.equity, start=state.day_start_equity,
                                 peak=state.peak_equity)
        emergency_stop("deployment", str(level), deployment=deployment, reason=reason, automatic=True)
        DeploymentEvent.objects.create(deployment=deployment, severity=DeploymentEvent.Severity.CRITICAL,
                                       message=f"kill switch tripped at {level}: {reason}")

    def flatten(self, pk: int, *, close: bool = True) -> bool:
        """Between bars, under a HALT or FLATTEN switch: cancel every open order and, with `close` (FLATTEN),
        close every position now, at the last bar's prices (the paper broker's closes; a venue's market).
        Returns whether it is flat with nothing open. Retried every tick until it is."""
        runtime = self.runtimes[pk]
        held = any(runtime.broker.account().positions.values()) and close
        if runtime.last_bar is None or not (held or runtime.broker.open_orders()):
            return True
        runtime.flattens += 1
        bar = runtime.last_bar
        with transaction.atomic():
            deployment = Deployment.objects.select_for_update().filter(pk=pk, lease_owner=self.owner).first()
            if deployment is None:
                return False
            guard = Guard(deployment, runtime, bar, limits=limits_for(deployment), level=kill_level_for(deployment))
            if guard.level < KillLevel.HALT:
                return True
            close = close and guard.level >= KillLevel.FLATTEN
            updates = self._cancel_open(runtime)
            account = runtime.broker.account()
            zeros = {symbol: 0.0 for symbol in runtime.policy.symbols}
            prefix = f"{runtime.id_prefix}x{runtime.flattens}b{bar.index}"
            requests = orders_for_targets(zeros, account, bar.prices(), id_prefix=prefix) if close else []
            send(requests, bar=bar, broker=runtime.broker, check=guard.check, record=updates.append,
                 outcome=BarOutcome(bar=bar, equity=0.0, equity_after=0.0, account=account))
            record_updates(deployment, updates, bar, refused=guard.refused, marks=True)
            guard.record()
            after = runtime.broker.account()
            fields = {"cash": after.cash, "equity": after.equity(bar.prices()), "updated_at": timezone.now()}
            if runtime.paper:
                fields["broker_state"] = runtime.broker.state()
            Deployment.objects.filter(pk=pk).update(**fields)
        if runtime.paper:
            runtime.broker.prune()
        return not (any(runtime.broker.account().positions.values()) and close or runtime.broker.open_orders())

    def _finish_replay(self, pk: int) -> None:
        deployment = Deployment.objects.get(pk=pk)
        if deployment.status == _S.RUNNING and deployment.lease_owner == self.owner:
            try:
                deployment_transition(deployment=deployment, to=_S.STOPPED, error=REPLAY_OVER)
            except DeploymentTransitionConflict:
                pass
        self._drop(pk)

    # Leases ------------------------------------------------------------------------------------

    def claim(self) -> list[int]:
        """Start every active deployment this process holds without a runtime (a bar of it failed), and
        take and start every one nobody holds, whose holder stopped beating, or whose holder on this
        host is gone. Returns the ids started."""
        now = timezone.now()
        candidates = (Deployment.objects.filter(status__in=[*ACTIVE_DEPLOYMENT_STATUSES, _S.HALTED])
                      .exclude(pk__in=list(self.runtimes))
                      .values_list("pk", "lease_owner", "lease_host", "lease_pid", "lease_expires_at", "heartbeat_at"))
        started = []
        room = self._fair_share(now) - Deployment.objects.filter(lease_owner=self.owner).count()
        for pk, owner, host, pid, expires, beat in candidates:
            if owner != self.owner:
                if room <= 0:
                    continue
                if owner and not self._lost(host=host, pid=pid, expires=expires, beat=beat, now=now):
                    continue
                if not self._take(pk, previous=owner, now=now):
                    continue
                room -= 1
            started.append(pk)
            self._start(pk, previous=(owner, host, pid) if owner != self.owner else ("", "", None))
        return started

    def _fair_share(self, now) -> int:
        """How many deployments this process should hold: the active ones divided among the trading
        processes alive (rounded up), so that two processes split them instead of the first taking all.
        A process that died stops counting, and the others' shares grow to take its deployments."""
        active = Deployment.objects.filter(status__in=[*ACTIVE_DEPLOYMENT_STATUSES, _S.HALTED]).count()
        workers = TradingWorker.objects.exclude(owner=self.owner).values_list("host", "pid", "heartbeat_at")
        alive = 1 + sum(not self._lost(host=host, pid=pid, expires=beat + self.lease, beat=beat, now=now)
                        for host, pid, beat in workers)
        return -(-active // alive)

    def _lost(self, *, host: str, pid: int | None, expires, beat, now) -> bool:
        if expires is None or expires < now:
            return True
        return host == self.host and pid is not None and not process_alive(pid, since=beat or now)

    def _take(self, pk: int, *, previous: str, now) -> bool:
        # Compare-and-set on the holder the candidate was read with: of two processes taking one
        # deployment, one update matches.
        return Deployment.objects.filter(pk=pk, lease_owner=previous).update(
            lease_owner=self.owner, lease_host=self.host, lease_pid=self.pid, heartbeat_at=now,
            lease_expires_at=now + self.lease) == 1

    def _start(self, pk: int, *, previous: tuple) -> None:
        deployment = Deployment.objects.get(pk=pk)
        try:
            runtime = build_runtime(deployment)
        except DeploymentBroken as error:
            self._fail(deployment, str(error))
            return
        except Exception as error:  # noqa: BLE001 - any failure to build is the deployment's, said on its page
            log.exception("deployment %s cannot start", pk)
            self._fail(deployment, one_line(f"{type(error).__name__}: {error}"), tb=traceback.format_exc())
            return
        if not runtime.paper and deployment.last_bar is None:
            adopt_opening_positions(deployment, runtime.broker.account())
        problems = self._reconcile(deployment, runtime)
        self.runtimes[pk] = runtime
        self._note_start(deployment, previous)
        if problems:
            self._halt(deployment, problems)
        elif deployment.status == _S.PENDING:
            deployment_transition(deployment=deployment, to=_S.RUNNING,
                                  error=STARTED.format(owner=self.owner, host=self.host, pid=self.pid))

    def _reconciled_again(self, pk: int) -> bool:
        deployment = Deployment.objects.get(pk=pk)
        problems = self._reconcile(deployment, self.runtimes[pk])
        if problems:
            self._halt(deployment, problems)
            return False
        self._halted.discard(pk)
        return True

    def _reconcile(self, deployment: Deployment, runtime: Runtime) -> list[str]:
        last = SimpleNamespace(index=deployment.last_bar if deployment.last_bar is not None else -1,
                               time=deployment.last_bar_time)
        with transaction.atomic():
            problems = reconcile(deployment, runtime, last)
            Deployment.objects.filter(pk=deployment.pk).update(reconciled_at=timezone.now())
        return problems

    def _note_start(self, deployment: Deployment, previous: tuple) -> None:
        owner, host, pid = previous
        if owner:
            DeploymentEvent.objects.create(
                deployment=deployment, severity=DeploymentEvent.Severity.WARNING,
                message=TAKEN_OVER.format(owner=self.owner, host=self.host, pid=self.pid,
                                          previous=f"{owner} on {host} (pid {pid})"))

    def _halt(self, deployment: Deployment, problems: list[str]) -> None:
        if deployment.status in (_S.PENDING, _S.RUNNING, _S.PAUSED):
            deployment_transition(deployment=deployment, to=_S.HALTED,
                                  error=RECONCILE_FAILED.format(problems="; ".join(problems)))

    def _fail(self, deployment: Deployment, error: str, tb: str = "") -> None:
        log.error("deployment %s failed: %s\n%s", deployment.pk, error, tb)
        try:
            deployment_transition(deployment=deployment, to=_S.FAILED, error=FAILED_TO_BUILD.format(error=error))
        except DeploymentTransitionConflict:
            pass  # stopped meanwhile

    def heartbeat(self) -> None:
        """Say this process lives, renew the lease of every deployment held, and forget those another
        process took meanwhile."""
        now = timezone.now()
        TradingWorker.objects.update_or_create(owner=self.owner, defaults={"host": self.host, "pid": self.pid,
                                                                           "heartbeat_at": now})
        Deployment.objects.filter(lease_owner=self.owner).update(heartbeat_at=now, lease_expires_at=now + self.lease)
        held = set(Deployment.objects.filter(lease_owner=self.owner).values_list("pk", flat=True))
        for pk in set(self.runtimes) - held:
            self.runtimes.pop(pk).feed.close()

    def _statuses(self) -> dict[int, str]:
        if not self.runtimes:
            return {}
        return dict(Deployment.objects.filter(pk__in=list(self.runtimes), lease_owner=self.owner)
                    .values_list("pk", "status"))

    def _drop(self, pk: int, *, release: bool = True) -> None:
        self._halted.discard(pk)
        runtime = self.runtimes.pop(pk, None)
        if runtime is not None:
            runtime.feed.close()
        if release:
            Deployment.objects.filter(pk=pk, lease_owner=self.owner).update(lease_owner="", lease_expires_at=None)

    def release_all(self) -> None:
        """Let every held deployment go (a clean exit), so another process takes them over at once."""
        for pk in list(self.runtimes):
            self.runtimes.pop(pk).feed.close()
        Deployment.objects.filter(lease_owner=self.owner).update(lease_owner="", lease_expires_at=None)
        TradingWorker.objects.filter(owner=self.owner).delete()


def _last_bar(deployment: Deployment) -> int:
    return -1 if deployment.last_bar is None else deployment.last_bar
