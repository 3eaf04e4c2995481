from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from common.commands import refused
from common.errors import REFUSALS
from sessions.models import StrategySession
from trading.services import deployment_create, exchange_account_get

NO_SUCH_SESSION = "no session {pk}"


class Command(BaseCommand):
    help = (
        "Deploy a completed training session's best checkpoint, on paper or live. A running "
        "`manage.py trade` process starts it; its id is printed."
    )

    def add_arguments(self, parser):
        parser.add_argument("session", type=int, metavar="SESSION")
        parser.add_argument("--mode", choices=("paper", "live"), default="paper")
        parser.add_argument("--feed", choices=("replay", "live"), default="replay")
        parser.add_argument("--account", metavar="NAME", help="the strategy owner's exchange account (live)")
        parser.add_argument("--fill-model", choices=("close", "next_open"), default="close")
        parser.add_argument("--bars-per-second", type=float, help="replay speed (default: as fast as possible)")
        parser.add_argument("--timeframe", default="1m", help="live feed bar length (default 1m)")

    def handle(self, *args, session: int, mode: str, feed: str, account: str | None, fill_model: str,
               bars_per_second: float | None, timeframe: str, **options):
        try:
            source = StrategySession.objects.select_related("strategy__owner").get(pk=session)
        except StrategySession.DoesNotExist:
            raise CommandError(NO_SUCH_SESSION.format(pk=session)) from None
        owner = source.strategy.owner
        # manage.py runs as the operator: it acts as the strategy's owner.
        actor = get_user_model().objects.get(pk=owner.pk)
        try:
            chosen = exchange_account_get(owner=owner, name=account) if account else None
            deployment = deployment_create(session=source, user=actor, mode=mode, feed=feed, account=chosen,
                                           fill_model=fill_model, bars_per_second=bars_per_second,
                                           timeframe=timeframe)
        except REFUSALS as error:
            raise refused(error, label=f"session {session}") from None
        marker = " (LIVE: real orders)" if deployment.is_live else ""
        self.stdout.write(f"deployment {deployment.pk}{marker}: {deployment.name}, {deployment.mode} on a "
                          f"{deployment.feed} feed, pending until a `manage.py trade` process starts it")
