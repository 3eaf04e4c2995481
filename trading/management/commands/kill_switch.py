from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from common.commands import refused
from common.errors import REFUSALS, NotFound
from risk.models import KillSwitch
from risk.services import emergency_stop, kill_switch_lift
from trading.models import Deployment

NO_SUCH_DEPLOYMENT = "no deployment {pk}"
NO_SUCH_USER = "no user {name}"
NO_SUPERUSER = "no superuser exists to act as for the global kill switch: create one (manage.py createsuperuser)"
NAME_A_TARGET = "name what to {action}: --deployment ID, --user NAME or --all"
NAME_AN_ACTION = "--deployment, --user and --all name what to trip or lift: add --level LEVEL or --lift"
REASON_WITHOUT_LEVEL = "--reason goes with --level (a trip)"
NOTHING_LATCHED = "no kill switch is latched"


class Command(BaseCommand):
    help = (
        "Trip a kill switch (--level pause|halt|flatten) on one deployment, one user's deployments or all "
        "of them (--all), or lift the one latched there (--lift); without either, list the latched "
        "switches. The trading processes act on a trip at once: FLATTEN closes every position between bars."
    )

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--level", choices=KillSwitch.Level.values, help="trip at this level (latched until "
                            "lifted; a switch already latched is raised to it, never lowered)")
        action.add_argument("--lift", action="store_true", help="lift the switch latched on the target")
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--deployment", type=int, metavar="ID", help="one deployment (as its owner)")
        target.add_argument("--user", metavar="NAME", help="every deployment of one user (as that user)")
        target.add_argument("--all", action="store_true", dest="everything", help="every deployment (as a superuser)")
        parser.add_argument("--reason", default="", help="why, for the record (with --level)")

    def handle(self, *args, level: str | None, lift: bool, deployment: int | None, user: str | None,
               everything: bool, reason: str, **options):
        named = deployment is not None or user is not None or everything
        if reason and not level:
            raise CommandError(REASON_WITHOUT_LEVEL)
        if not (level or lift):
            if named:
                raise CommandError(NAME_AN_ACTION)
            self.list_latched()
            return
        if not named:
            raise CommandError(NAME_A_TARGET.format(action="trip" if level else "lift"))
        # manage.py runs as the operator: it acts as the deployment's owner, the user, or a superuser.
        label, scope, target, actor = self.target(deployment=deployment, user=user)
        try:
            if level:
                switch = emergency_stop(scope, level, actor=actor, reason=reason, **target)
            else:
                switch = kill_switch_lift(scope, actor=actor, **target)
        except REFUSALS as error:
            raise refused(error, label=label) from None
        if lift:
            self.stdout.write(f"{label}: kill switch lifted (it was at {switch.level}; #{switch.pk})")
            return
        raised = "" if switch.level == level else f" (asked for {level}: a latched switch is never lowered)"
        self.stdout.write(f"{label}: kill switch latched at {switch.level}{raised}; #{switch.pk}")

    def target(self, *, deployment: int | None, user: str | None) -> tuple[str, str, dict, object]:
        """(label, scope, the services' target keywords, the actor) of the target named."""
        users = get_user_model().objects
        try:
            if deployment is not None:
                found = Deployment.objects.select_related("owner").filter(pk=deployment).first()
                if found is None:
                    raise NotFound(NO_SUCH_DEPLOYMENT.format(pk=deployment))
                return f"deployment {deployment}", "deployment", {"deployment": found}, found.owner
            if user is not None:
                found = users.filter(**{users.model.USERNAME_FIELD: user}).first()
                if found is None:
                    raise NotFound(NO_SUCH_USER.format(name=user))
                return f"user {user}", "user", {"user": found}, found
            actor = users.filter(is_superuser=True, is_active=True).order_by("pk").first()
            if actor is None:
                raise NotFound(NO_SUPERUSER)
            return "all deployments", "global", {}, actor
        except NotFound as error:
            raise refused(error) from None

    def list_latched(self) -> None:
        switches = KillSwitch.objects.filter(lifted_at__isnull=True).select_related(
            "user", "deployment", "tripped_by").order_by("id")
        lines = [self.describe(switch) for switch in switches]
        self.stdout.write("\n".join(lines) if lines else NOTHING_LATCHED)

    @staticmethod
    def describe(switch: KillSwitch) -> str:
        on = {"global": "all deployments", "user": f"user {getattr(switch.user, 'username', switch.user_id)}",
              "deployment": f"deployment {switch.deployment_id}"}[switch.scope]
        by = "automatically" if switch.automatic else f"by {switch.tripped_by or 'the system'}"
        when = switch.tripped_at.isoformat(timespec="seconds")
        return f"#{switch.pk} {switch.level:<7} {on}: tripped {when} {by}: {switch.reason}"
