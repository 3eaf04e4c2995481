import os
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from common.commands import refused
from common.errors import REFUSALS
from engine.training.callbacks import Callback, EpochEnd, TrainResult, TrainStart
from sessions import runner, services
from sessions.management.run_configs import load_config, owner_named, report_table
from sessions.models import SessionStatus, StrategySession
from sessions.selectors import session_report
from strategies.services import strategy_from_config

NOT_COMPLETED = "{count} of {total} sessions did not complete: {which}"
INTERRUPTED = "interrupted (Ctrl-C) while training in manage.py train --inline"
INTERRUPTED_HINT = "interrupted: session {pk} is paused at its last checkpoint; resume it and a worker continues it"
POLL_SECONDS = 1.0
SHOWN_METRICS = ("train/loss", "eval/sharpe", "eval/total_return")


class Command(BaseCommand):
    help = (
        "Train run config files (the engine's RunConfig JSON): each "
        "becomes a strategy and a training session, queued for the workers (`manage.py qcluster`) or, "
        "with --inline, trained here. A dataset given as a file path is imported first if it is new."
    )

    def add_arguments(self, parser):
        parser.add_argument("configs", nargs="+", metavar="CONFIG.json")
        parser.add_argument("--inline", action="store_true",
                            help="train here, one config after another, with a progress bar")
        parser.add_argument("--wait", action="store_true",
                            help="follow the queued sessions until they end; exit 1 unless all complete")
        parser.add_argument("--user", metavar="USERNAME", help="the strategies' owner (default: the only superuser)")

    def handle(self, *args, configs: list[str], inline: bool, wait: bool, user: str | None, **options):
        # Every file is validated before anything is created: a config with a bad field changes nothing.
        loaded = [(Path(path), load_config(path)) for path in configs]
        owner = owner_named(user)
        sessions = []
        for path, config in loaded:
            session = self._submit(path, config, owner=owner, inline=inline)
            self.stdout.write(f"{path}: strategy {session.strategy.name!r}, session {session.pk} {session.status}")
            if inline:
                session = self._run_here(session)
                self.stdout.write(self._outcome(path, session))
            sessions.append((path, session))
        if wait and not inline:
            sessions = [(path, self._follow(session)) for path, session in sessions]
            for path, session in sessions:
                self.stdout.write(self._outcome(path, session))
        unfinished = [s for _, s in sessions if s.status != SessionStatus.COMPLETED]
        if (inline or wait) and unfinished:
            which = ", ".join(f"{s.pk} {s.status}" for s in unfinished)
            raise CommandError(NOT_COMPLETED.format(count=len(unfinished), total=len(sessions), which=which))

    @property
    def _bar_file(self):
        # The stream under self.stderr: its wrapper ends every write with a newline, and a progress
        # bar redraws its line with carriage returns.
        return self.stderr._out

    def _submit(self, path: Path, config: dict, *, owner, inline: bool) -> StrategySession:
        try:
            with transaction.atomic():
                strategy = strategy_from_config(
                    config=config, owner=owner, name=path.stem, base_dir=path.resolve().parent
                )
                session = services.session_submit(strategy=strategy, user=owner, enqueue=not inline)
                if inline:
                    # In the same transaction: no worker ever sees it queued and takes it first.
                    session = services.session_start(
                        session=session, process_id=os.getpid(), host=services.this_host()
                    )
        except REFUSALS as error:
            raise refused(error, label=path) from None
        return session

    def _run_here(self, session: StrategySession) -> StrategySession:
        try:
            return runner.execute(session, callbacks=[ProgressBar(f"session {session.pk}", self._bar_file)])
        except KeyboardInterrupt:
            # Ctrl-C: keep what is trained. Paused, it resumes from its last checkpoint, on a worker.
            services.session_finish(session=session, to=SessionStatus.PAUSED, error=INTERRUPTED)
            raise CommandError(INTERRUPTED_HINT.format(pk=session.pk)) from None

    def _follow(self, session: StrategySession) -> StrategySession:
        """Show a queued session's progress until it ends (or pauses: someone else decides what next)."""
        bar = tqdm(desc=f"session {session.pk}", unit="epoch", file=self._bar_file)
        while True:
            session.refresh_from_db()
            bar.total = session.progress_total or None
            bar.n = session.progress_epoch
            bar.set_postfix_str(session.status)
            if session.is_final or session.status == SessionStatus.PAUSED:
                bar.close()
                return session
            time.sleep(POLL_SECONDS)

    def _outcome(self, path: Path, session: StrategySession) -> str:
        line = f"{path}: session {session.pk} {session.status}"
        report = session_report(session=session)
        if report is not None:
            return f"{line}; best epoch {session.result_data.get('best_epoch')}, test split:\n{report_table(report)}"
        if session.error:
            return f"{line}: {session.error.strip().splitlines()[-1]}"
        return line


class ProgressBar(Callback):
    """A tqdm bar over a training's epochs, with the latest loss and validation numbers."""

    def __init__(self, label: str, file):
        self.label, self.file, self.bar = label, file, None

    def on_train_start(self, info: TrainStart) -> None:
        self.bar = tqdm(total=info.epochs, initial=info.start_epoch - 1, desc=self.label, unit="epoch", file=self.file)

    def on_epoch_end(self, ctx: EpochEnd) -> None:
        self.bar.set_postfix({key: f"{ctx.metrics[key]:.4g}" for key in SHOWN_METRICS if key in ctx.metrics})
        self.bar.update(1)

    def on_train_end(self, result: TrainResult) -> None:
        self.bar.close()
