from django.core.management.base import BaseCommand, CommandError

from common.commands import refused
from common.errors import REFUSALS
from trading.models import Deployment
from trading.services import deployment_pause, deployment_resume, deployment_stop

NO_SUCH_DEPLOYMENT = "no deployment {pk}"
ACTIONS = {"pause": deployment_pause, "resume": deployment_resume, "stop": deployment_stop}


class Command(BaseCommand):
    help = "Pause, resume or stop a deployment; the trading process acts on it before its next bar."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=sorted(ACTIONS))
        parser.add_argument("deployment", type=int, metavar="ID")

    def handle(self, *args, action: str, deployment: int, **options):
        try:
            target = Deployment.objects.select_related("owner").get(pk=deployment)
        except Deployment.DoesNotExist:
            raise CommandError(NO_SUCH_DEPLOYMENT.format(pk=deployment)) from None
        try:
            done = ACTIONS[action](deployment=target, user=target.owner)
        except REFUSALS as error:
            raise refused(error, label=f"deployment {deployment}") from None
        self.stdout.write(f"deployment {done.pk}: {done.status}")
