"""The risk admin: limits saved only through limits_set (each change recorded, refusals on the form),
kill switches tripped and lifted only through the services (no level edited), and the decisions and
changes view-only."""
import json

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from risk.admin import ACTION_DONE, ACTION_REFUSED
from risk.limits import Limits
from risk.models import KillSwitch, LimitChange, RiskLimit
from risk.services import GLOBAL_ONLY_SUPERUSER, emergency_stop, limits_set
from tests.platform.deployment_helpers import make_deployment
from tests.platform.html_forms import shown
from tests.platform.risk_helpers import decide

pytestmark = pytest.mark.django_db

LIMIT_ADD = reverse("admin:risk_risklimit_add")
SWITCHES = reverse("admin:risk_killswitch_changelist")
SWITCH_ADD = reverse("admin:risk_killswitch_add")


def form_of(client, url: str, form_id: str, **values) -> dict:
    """The admin form at `url` as a browser would send it (its management forms too), with `values`."""
    sent = shown(client.get(url), form_id).values
    return {**sent, **{k: v for k, v in values.items() if v is not None}}


def errors_of(response) -> dict:
    """The admin form's errors, by field ("__all__": the form's own)."""
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


@pytest.fixture
def staff_with_risk_perms(staff_user):
    staff_user.user_permissions.set(Permission.objects.filter(content_type__app_label="risk"))
    return staff_user


# Limits -------------------------------------------------------------------------------------------

def test_adding_limits_goes_through_limits_set_and_records_the_change(admin_client, admin_user, user):
    data = form_of(admin_client, LIMIT_ADD, "risklimit_form", scope="user", user=str(user.pk),
                   limits=json.dumps({"max_order_notional": 50_000, "max_open_orders": 2}))

    response = admin_client.post(LIMIT_ADD, data)

    assert response.status_code == 302, errors_of(response)
    row = RiskLimit.objects.get()
    assert (row.scope, row.user, row.updated_by) == ("user", user, admin_user)
    assert row.as_limits() == Limits(max_order_notional=50_000, max_open_orders=2)
    change = LimitChange.objects.get()
    assert (change.limit, change.changed_by, change.before, change.after) == (row, admin_user, {}, row.limits)


def test_changing_limits_records_each_change_and_keeps_the_scope_and_target(admin_client, admin_user, user):
    row = limits_set(scope="user", limits=Limits(max_open_orders=2), actor=user, user=user)
    url = reverse("admin:risk_risklimit_change", args=[row.pk])

    data = form_of(admin_client, url, "risklimit_form", limits=json.dumps({"max_open_orders": 5}))
    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    row.refresh_from_db()
    assert (row.scope, row.user, row.limits["max_open_orders"]) == ("user", user, 5)
    changes = list(LimitChange.objects.order_by("pk"))
    assert [(c.changed_by, c.before.get("max_open_orders"), c.after["max_open_orders"]) for c in changes] == [
        (user, None, 2), (admin_user, 2, 5)]
    assert "scope" not in shown(admin_client.get(url), "risklimit_form").values  # read-only


@pytest.mark.parametrize("limits, needle", [
    ({"max_order_notional": 150_000}, "max_order_notional: "),
    ({"max_order_notional": -1}, "max_order_notional must be a finite number > 0"),
    ({"max_order_notionl": 1}, "unknown limits: max_order_notionl"),
    ([1, 2], "limits must be a JSON object"),
])
def test_a_refused_limit_is_an_error_on_the_form_and_saves_nothing(admin_client, user, superuser, limits, needle):
    limits_set(scope="system", limits=Limits(max_order_notional=100_000), actor=superuser)
    data = form_of(admin_client, LIMIT_ADD, "risklimit_form", scope="user", user=str(user.pk),
                   limits=json.dumps(limits))

    errors = errors_of(admin_client.post(LIMIT_ADD, data))

    assert any(needle in message for message in errors.get("limits", [])), errors
    assert RiskLimit.objects.count() == LimitChange.objects.count() == 1  # the ceiling's alone


def test_staff_may_not_set_the_system_wide_ceiling_from_the_admin(client, staff_with_risk_perms):
    client.force_login(staff_with_risk_perms)
    data = form_of(client, LIMIT_ADD, "risklimit_form", scope="system", limits=json.dumps({"max_open_orders": 1}))

    errors = errors_of(client.post(LIMIT_ADD, data))

    assert errors["__all__"] == [GLOBAL_ONLY_SUPERUSER] and not RiskLimit.objects.exists()


def test_limits_are_never_deleted_from_the_admin(admin_client, user):
    row = limits_set(scope="user", limits=Limits(max_open_orders=2), actor=user, user=user)
    assert admin_client.get(reverse("admin:risk_risklimit_delete", args=[row.pk])).status_code == 403


# Kill switches ------------------------------------------------------------------------------------

def act(client, action: str, *switches: KillSwitch) -> list[str]:
    response = client.post(SWITCHES, {"action": action, "_selected_action": [s.pk for s in switches]}, follow=True)
    assert response.redirect_chain == [(SWITCHES, 302)]
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_switch_added_in_the_admin_is_tripped_by_the_service(admin_client, admin_user, strategy):
    deployment = make_deployment(strategy)
    data = form_of(admin_client, SWITCH_ADD, "killswitch_form", scope="deployment", deployment=str(deployment.pk),
                   level="halt", reason="")

    response = admin_client.post(SWITCH_ADD, data)

    assert response.status_code == 302, errors_of(response)
    switch = KillSwitch.objects.get()
    assert (switch.scope, switch.deployment, switch.level, switch.tripped_by, switch.reason) == (
        "deployment", deployment, "halt", admin_user, "tripped at halt")
    missing = form_of(admin_client, SWITCH_ADD, "killswitch_form", scope="user", level="pause")
    assert "user" in errors_of(admin_client.post(SWITCH_ADD, missing))
    assert KillSwitch.objects.count() == 1


def test_switch_actions_trip_and_lift_through_the_services_and_no_level_is_edited(admin_client, user, superuser):
    switch = emergency_stop("user", "pause", actor=user, user=user)
    world = emergency_stop("global", "halt", actor=superuser)

    assert act(admin_client, "trip_flatten", switch) == [ACTION_DONE.format(action="Tripped at flatten",
                                                                             ids=switch.pk)]
    assert act(admin_client, "trip_pause", world) == [ACTION_DONE.format(action="Tripped at pause", ids=world.pk)]
    switch.refresh_from_db()
    world.refresh_from_db()
    assert (switch.level, world.level) == ("flatten", "halt")  # raised, never lowered

    assert act(admin_client, "lift_switches", switch, world) == [
        ACTION_DONE.format(action="Lifted", ids=f"{switch.pk}, {world.pk}")]
    assert not KillSwitch.objects.filter(lifted_at__isnull=True).exists()

    page = admin_client.get(reverse("admin:risk_killswitch_change", args=[switch.pk])).content.decode()
    assert 'name="level"' not in page and 'name="_save"' not in page


def test_a_refused_switch_action_is_reported_and_does_not_stop_the_others(client, staff_with_risk_perms, user,
                                                                          superuser):
    world = emergency_stop("global", "halt", actor=superuser)
    own = emergency_stop("user", "pause", actor=staff_with_risk_perms, user=staff_with_risk_perms)
    client.force_login(staff_with_risk_perms)

    said = act(client, "lift_switches", world, own)

    assert said == [ACTION_REFUSED.format(pk=world.pk, error=GLOBAL_ONLY_SUPERUSER),
                    ACTION_DONE.format(action="Lifted", ids=own.pk)]
    world.refresh_from_db()
    own.refresh_from_db()
    assert world.latched and not own.latched


# The record -----------------------------------------------------------------------------------------

def test_decisions_and_changes_are_view_only(admin_client, user, strategy):
    decision = decide(make_deployment(strategy), bar=0, code="price_band", message="too far")
    change = limits_set(scope="user", limits=Limits(), actor=user, user=user).changes.get()

    for model, obj in (("riskdecision", decision), ("limitchange", change)):
        assert admin_client.get(reverse(f"admin:risk_{model}_add")).status_code == 403
        assert admin_client.get(reverse(f"admin:risk_{model}_delete", args=[obj.pk])).status_code == 403
        page = admin_client.get(reverse(f"admin:risk_{model}_change", args=[obj.pk]))
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
        assert admin_client.get(reverse(f"admin:risk_{model}_changelist")).status_code == 200
