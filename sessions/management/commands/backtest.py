import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from common.commands import refused
from common.errors import REFUSALS
from sessions.management.run_configs import load_config, report_table
from sessions.models import StrategySession
from sessions.runner import backtest_report
from sessions.selectors import BEST_CHECKPOINT, session_run_dir
from sessions.services import json_safe
from strategies.selectors import dataset_named

NO_SUCH_SESSION = "no session {pk}"
NO_CHECKPOINT = (
    "session {pk} has no checkpoint to backtest ({path} is missing): a training session that finished "
    "at least one epoch, or a backtest session, is needed"
)
UNTRAINED = "no checkpoint given: {agent} is backtested as it starts, untrained (a baseline needs no training)"


class Command(BaseCommand):
    help = (
        "Backtest on the test split and print the report: the best checkpoint of a training session "
        "(--session ID; a backtest session runs its own checkpoint again), or a run config file as it "
        "starts (--config; what a baseline agent is). Nothing is written to the database."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--session", type=int, metavar="ID")
        source.add_argument("--config", metavar="CONFIG.json")
        parser.add_argument("--json", action="store_true", dest="as_json",
                            help='print the whole report as JSON ("metrics", "benchmark_metrics", "equity_curve", ...)')

    def handle(self, *args, session: int | None, config: str | None, as_json: bool, **options):
        if session is not None:
            report = self._of_session(session)
        else:
            run_config = _with_imported_dataset(load_config(config))
            self.stderr.write(UNTRAINED.format(agent=run_config["agent"]))
            report = self._backtest(run_config, checkpoint=None, label=config)
        self.stdout.write(json.dumps(json_safe(report), indent=2) if as_json else report_table(report))

    def _of_session(self, pk: int) -> dict:
        try:
            session = StrategySession.objects.get(pk=pk)
        except StrategySession.DoesNotExist:
            raise CommandError(NO_SUCH_SESSION.format(pk=pk)) from None
        if session.session_type == StrategySession.SessionType.BACKTEST:
            checkpoint = Path(session.checkpoint_path)
        else:
            checkpoint = session_run_dir(session=session) / BEST_CHECKPOINT
        if not checkpoint.is_file():
            raise CommandError(NO_CHECKPOINT.format(pk=pk, path=checkpoint))
        return self._backtest(session.config, checkpoint=checkpoint, label=f"session {pk}")

    def _backtest(self, config: dict, *, checkpoint: Path | None, label: str) -> dict:
        try:
            return backtest_report(config, checkpoint=checkpoint)
        except REFUSALS as error:
            raise refused(error, label=label) from None
        except FileNotFoundError as error:  # the checkpoint, or a dataset file gone since it was imported
            raise CommandError(f"{label}: {error}") from None


def _with_imported_dataset(config: dict) -> dict:
    """`config` with its dataset read from the copy an import made when it names an imported dataset, as
    `manage.py train` finds it (a file path or a built-in stays as it is)."""
    dataset = dataset_named(str(config.get("dataset", "")))
    return {**config, "dataset": dataset.path} if dataset else config
