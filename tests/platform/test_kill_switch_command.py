"""`manage.py kill_switch`: trips and lifts the switch of one deployment, one user's deployments or all of
them, acting as the deployment's owner, the user, or a superuser; lists the latched switches; refuses
in one line (exit status 1) what it cannot do."""
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from risk.models import KillSwitch
from risk.services import emergency_stop, kill_level_for
from tests.platform.deployment_helpers import make_deployment
from trading.management.commands import kill_switch as command

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(strategy):
    return make_deployment(strategy)


def kill_switch(*args) -> str:
    out = StringIO()
    call_command("kill_switch", *args, stdout=out)
    return out.getvalue().strip()


def refusal(*args) -> str:
    with pytest.raises(CommandError) as caught:
        kill_switch(*args)
    message = str(caught.value)
    assert "\n" not in message
    return message


def latched() -> list[tuple]:
    return list(KillSwitch.objects.filter(lifted_at__isnull=True).values_list("scope", "level", "user__username",
                                                                               "deployment_id", "tripped_by__username"))


def test_tripping_one_deployment_acts_as_its_owner_and_latches_at_the_level(user, deployment):
    out = kill_switch("--level", "halt", "--deployment", str(deployment.pk), "--reason", "drill")
    switch = KillSwitch.objects.get()
    assert out == f"deployment {deployment.pk}: kill switch latched at halt; #{switch.pk}"
    assert latched() == [("deployment", "halt", None, deployment.pk, "ada")]
    assert switch.reason == "drill" and not switch.automatic
    assert kill_level_for(deployment) == 2


def test_tripping_a_user_acts_as_that_user(user, deployment):
    out = kill_switch("--level", "pause", "--user", "ada")
    assert out == f"user ada: kill switch latched at pause; #{KillSwitch.objects.get().pk}"
    assert latched() == [("user", "pause", "ada", None, "ada")]
    assert kill_level_for(deployment) == 1


def test_tripping_all_acts_as_a_superuser(superuser, deployment):
    out = kill_switch("--level", "flatten", "--all")
    assert out.startswith("all deployments: kill switch latched at flatten; #")
    assert latched() == [("global", "flatten", None, None, "root")]
    assert kill_level_for(deployment) == 3


def test_a_second_trip_raises_the_switch_and_says_when_it_is_not_lowered(user, deployment):
    kill_switch("--level", "halt", "--deployment", str(deployment.pk))
    out = kill_switch("--level", "pause", "--deployment", str(deployment.pk))
    assert out.endswith("latched at halt (asked for pause: a latched switch is never lowered); "
                        f"#{KillSwitch.objects.get().pk}")
    kill_switch("--level", "flatten", "--deployment", str(deployment.pk))
    assert latched() == [("deployment", "flatten", None, deployment.pk, "ada")]


@pytest.mark.parametrize("target", ["deployment", "user", "all"])
def test_lift_lifts_the_switch_latched_on_the_target(user, superuser, deployment, target):
    args = {"deployment": ["--deployment", str(deployment.pk)], "user": ["--user", "ada"], "all": ["--all"]}[target]
    kill_switch("--level", "flatten", *args)
    out = kill_switch("--lift", *args)
    switch = KillSwitch.objects.get()
    assert out.endswith(f": kill switch lifted (it was at flatten; #{switch.pk})")
    assert latched() == [] and switch.lifted_by is not None
    assert kill_level_for(deployment) == 0


def test_without_an_action_it_lists_the_latched_switches(user, superuser, deployment):
    assert kill_switch() == command.NOTHING_LATCHED
    kill_switch("--level", "halt", "--all", "--reason", "exchange outage")
    kill_switch("--level", "pause", "--user", "ada")
    emergency_stop("deployment", "flatten", deployment=deployment, reason="drawdown", automatic=True)
    kill_switch("--level", "pause", "--user", "ada")
    kill_switch("--lift", "--user", "ada")
    lines = kill_switch().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("#") and " halt    all deployments: tripped " in lines[0]
    assert lines[0].endswith(" by root: exchange outage")
    assert f" flatten deployment {deployment.pk}: tripped " in lines[1]
    assert lines[1].endswith(" automatically: drawdown")


def test_refusals(user, deployment):
    assert refusal("--level", "halt", "--deployment", "999") == command.NO_SUCH_DEPLOYMENT.format(pk=999)
    assert refusal("--level", "halt", "--user", "nobody") == command.NO_SUCH_USER.format(name="nobody")
    assert refusal("--level", "halt", "--all") == command.NO_SUPERUSER  # only ada exists
    assert refusal("--level", "halt") == command.NAME_A_TARGET.format(action="trip")
    assert refusal("--lift") == command.NAME_A_TARGET.format(action="lift")
    assert refusal("--deployment", str(deployment.pk)) == command.NAME_AN_ACTION
    assert refusal("--reason", "why", "--lift", "--user", "ada") == command.REASON_WITHOUT_LEVEL
    assert refusal("--lift", "--deployment", str(deployment.pk)) == (
        f"deployment {deployment.pk}: no kill switch is tripped there")
    assert latched() == []


@pytest.mark.parametrize("args", [["--level", "stop", "--all"], ["--level", "halt", "--lift", "--all"],
                                  ["--level", "halt", "--all", "--user", "ada"]])
def test_arguments_argparse_refuses(args):
    with pytest.raises(CommandError):
        kill_switch(*args)
