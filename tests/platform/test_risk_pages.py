"""The risk pages: limits per user, strategy, deployment and the system-wide ceiling (effective limits,
the form for those who may, the change history), the kill switches (a deployment's on its page, yours
and the global one on /risk/kill-switch/, each tripped only with the confirmation), the banner every
page shows while a switch reaching you is latched, and a deployment's risk decisions on its page.

Every number a page shows is one written here (the limits through the services, the decisions as the
trading process writes them), so each can be checked by hand.
"""
import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from risk.forms import CONFIRM_TRIP_REQUIRED
from risk.limits import ABOVE_CEILING as ABOVE
from risk.limits import Limits
from risk.models import KillSwitch, LimitChange, RiskLimit
from risk.services import ABOVE_CEILING, GLOBAL_ONLY_SUPERUSER, NOTHING_TRIPPED, emergency_stop, limits_set
from risk.views import LIFTED, LIMITS_SAVED, TRIPPED
from tests.platform.deployment_helpers import make_deployment
from tests.platform.html_forms import shown
from tests.platform.risk_helpers import decide, strategy_of
from trademaster_web.error_pages import NOT_FOUND

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def deployment(strategy):
    return make_deployment(strategy)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def limits_table(page: str) -> dict[str, list[str]]:
    """The limits table: each limit's name -> its cells, as shown."""
    table = re.search(r'<table id="limits">.*?</table>', page, re.S).group(0)
    return {name: re.findall(r'<td class="num">(.*?)</td>', cells)
            for name, cells in re.findall(r'<tr data-limit="(\w+)">(.*?)</tr>', table, re.S)}


def banner(page: str) -> str | None:
    found = re.search(r'id="kill-switch-banner"[^>]*>(.*?)</p>', page, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else None


def form_data(**values) -> dict:
    """What the limits form posts: every input empty but the breach level, and `values`."""
    return {"breach_level": "halt", **values}


# ----------------------------------------------------------------------------------------------- limits

@pytest.mark.parametrize("path", ["/risk/limits/", "/risk/limits/system/", "/risk/limits/strategies/1/",
                                  "/risk/kill-switch/", "/deployments/1/risk/"])
def test_anonymous_users_are_sent_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_your_limits_page_shows_them_beside_the_ceiling_with_a_form_and_no_history_yet(ada, superuser, strategy):
    limits_set(scope="system", limits=Limits(max_order_notional=100_000.0), actor=superuser)

    response = ada.get("/risk/limits/")

    page = response.content.decode()
    assert response.status_code == 200
    table = limits_table(page)
    assert table["max_order_notional"] == ["—", "100,000"] and table["breach_level"] == ["—", "halt"]
    assert "Never set" in page and "No changes yet." in page
    assert shown(response, "limits-form").values["breach_level"] == "halt"
    assert reverse("risk:strategy_limits", args=[strategy.pk]) in page  # her strategies' pages


def test_saving_your_limits_records_the_change_and_shows_it(ada, user):
    response = ada.post("/risk/limits/", form_data(max_order_notional="50000", daily_loss_pct="2.5",
                                                   max_open_orders="3", allowed_symbols="A1, A0",
                                                   hours_start="09:30", hours_end="16:00",
                                                   hours_weekdays=["0", "4"], breach_level="flatten"))

    assert response.status_code == 302 and response.url == "/risk/limits/"
    assert messages_of(response) == [LIMITS_SAVED.format(what="every deployment of yours")]
    row = RiskLimit.objects.get(scope="user", user=user)
    assert row.as_limits() == Limits(max_order_notional=50_000.0, daily_loss_pct=2.5, max_open_orders=3,
                                     allowed_symbols=frozenset({"A0", "A1"}), breach_level="flatten",
                                     trading_hours=row.as_limits().trading_hours)
    assert str(row.as_limits().trading_hours) == "09:30-16:00 UTC Mon,Fri"
    page = ada.get("/risk/limits/")
    html = page.content.decode()
    table = limits_table(html)
    assert table["max_order_notional"][0] == "50,000" and table["daily_loss_pct"][0] == "2.5"
    assert table["allowed_symbols"][0] == "A0, A1" and table["trading_hours"][0] == "09:30-16:00 UTC Mon,Fri"
    assert shown(page, "limits-form").values["max_order_notional"] == "50000.0"
    change = LimitChange.objects.get()
    assert f'data-change="{change.pk}"' in html and "Last set by ada" in html
    assert re.search(r"<td>Order notional \(money\)</td><td class=\"num\">—</td><td class=\"num\">50,000</td>", html)


@pytest.mark.parametrize("values, field", [
    ({"max_order_notional": "0"}, "max_order_notional"),
    ({"max_order_notional": "-3"}, "max_order_notional"),
    ({"max_order_notional": "nan"}, "max_order_notional"),
    ({"max_order_notional": "1e400"}, "max_order_notional"),
    ({"daily_loss_pct": "150"}, "daily_loss_pct"),
    ({"max_open_orders": "0"}, "max_open_orders"),
    ({"max_open_orders": "2.5"}, "max_open_orders"),
    ({"hours_start": "16:00", "hours_end": "09:00"}, "hours_start"),
    ({"hours_start": "25:00"}, "hours_start"),
    ({"hours_weekdays": ["9"]}, "hours_weekdays"),
    ({"breach_level": "panic"}, "breach_level"),
])
def test_an_invalid_limit_is_shown_on_its_input_and_nothing_is_saved(ada, values, field):
    response = ada.post("/risk/limits/", form_data(**values))

    assert response.status_code == 200
    assert shown(response, "limits-form").errors.get(field), response.content.decode()
    assert not RiskLimit.objects.exists()


def test_a_limit_above_the_ceiling_is_refused_on_its_input(ada, superuser):
    limits_set(scope="system", limits=Limits(max_order_notional=100_000.0), actor=superuser)

    response = ada.post("/risk/limits/", form_data(max_order_notional="150000"))

    errors = shown(response, "limits-form").errors
    assert errors["max_order_notional"] == [ABOVE_CEILING.format(message=ABOVE.format(value=150_000.0,
                                                                                      ceiling=100_000.0))]
    assert not RiskLimit.objects.filter(scope="user").exists()


def test_the_ceiling_is_read_by_all_and_set_by_superusers_only(client, user, superuser):
    client.force_login(user)
    page = client.get("/risk/limits/system/")
    assert page.status_code == 200 and 'id="limits-form"' not in page.content.decode()
    assert client.post("/risk/limits/system/", form_data(max_open_orders="1")).status_code == 403
    assert not RiskLimit.objects.exists()

    client.force_login(superuser)
    assert 'id="limits-form"' in client.get("/risk/limits/system/").content.decode()
    assert client.post("/risk/limits/system/", form_data(max_open_orders="5")).status_code == 302
    assert RiskLimit.objects.get(scope="system").limits["max_open_orders"] == 5


def test_a_strategys_limits_page_is_its_owners_and_a_superusers(client, user, staff_user, other_user, superuser,
                                                                 strategy):
    url = f"/risk/limits/strategies/{strategy.pk}/"
    for stranger in (other_user, staff_user):
        client.force_login(stranger)
        response = client.get(url)
        assert response.status_code == 404 and NOT_FOUND in response.content.decode()
        assert client.post(url, form_data(max_open_orders="1")).status_code == 404

    client.force_login(superuser)
    assert client.post(url, form_data(max_open_orders="4")).status_code == 302
    client.force_login(user)
    page = client.get(url).content.decode()
    assert limits_table(page)["max_open_orders"] == ["4", "—"] and "Last set by root" in page
    assert 'id="limits-form"' in page
    assert client.get("/risk/limits/strategies/99999999999999999999/").status_code == 404


def test_a_deployments_limits_page_shows_the_tightest_and_each_scope(ada, user, superuser, strategy, deployment):
    limits_set(scope="system", limits=Limits(max_order_notional=100_000.0), actor=superuser)
    limits_set(scope="user", limits=Limits(max_order_notional=50_000.0, max_open_orders=4), actor=user, user=user)
    limits_set(scope="strategy", limits=Limits(max_order_notional=80_000.0, max_open_orders=2), actor=user,
               strategy=strategy)

    detail = ada.get(f"/deployments/{deployment.pk}/").content.decode()
    assert f'href="/deployments/{deployment.pk}/risk/"' in detail
    response = ada.post(f"/deployments/{deployment.pk}/risk/", form_data(max_order_notional="60000"))
    assert response.status_code == 302
    page = ada.get(f"/deployments/{deployment.pk}/risk/").content.decode()

    # Columns: its own, the effective (tightest), the ceiling, its owner's, its strategy's.
    table = limits_table(page)
    assert table["max_order_notional"] == ["60,000", "50,000", "100,000", "50,000", "80,000"]
    assert table["max_open_orders"] == ["—", "2", "—", "4", "2"]
    assert 'id="limits-form"' in page


def test_staff_see_a_deployments_limits_without_a_form_others_get_404(client, staff_user, other_user, deployment):
    url = f"/deployments/{deployment.pk}/risk/"
    client.force_login(staff_user)
    assert 'id="limits-form"' not in client.get(url).content.decode()
    assert client.post(url, form_data(max_open_orders="1")).status_code == 403
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    assert client.post(url, form_data(max_open_orders="1")).status_code == 404
    assert not RiskLimit.objects.exists()


# --------------------------------------------------------------------------------------- kill switches

def test_a_deployments_switch_trips_only_with_the_confirmation_then_lifts(ada, deployment):
    url = f"/deployments/{deployment.pk}/"
    form = shown(ada.get(url), "trip-form")
    assert form.values["level"] == "pause" and "confirm" not in form.values

    unconfirmed = ada.post(f"{url}kill-switch/", {"level": "halt"})
    assert unconfirmed.status_code == 302 and messages_of(unconfirmed) == [CONFIRM_TRIP_REQUIRED]
    assert not KillSwitch.objects.exists()
    assert CONFIRM_TRIP_REQUIRED in ada.get(url).content.decode()  # shown once, with the page

    tripped = ada.post(f"{url}kill-switch/", {"level": "halt", "reason": "fat finger", "confirm": "on"})

    assert messages_of(tripped) == [TRIPPED.format(level="halt", what=f"deployment #{deployment.pk}")]
    switch = KillSwitch.objects.get()
    assert (switch.scope, switch.deployment_id, switch.level, switch.reason) == (
        "deployment", deployment.pk, "halt", "fat finger")
    page = ada.get(url).content.decode()
    assert f'data-switch="{switch.pk}"' in page and 'id="lift"' in page
    assert banner(page) == f"Kill switch latched: HALT on deployment #{deployment.pk}. Kill switches"

    lifted = ada.post(f"{url}kill-switch/lift/")
    assert messages_of(lifted) == [LIFTED.format(what=f"deployment #{deployment.pk}")]
    page = ada.get(url).content.decode()
    assert banner(page) is None and 'id="no-switch"' in page
    nothing = ada.post(f"{url}kill-switch/lift/")
    assert nothing.status_code == 302 and messages_of(nothing) == [NOTHING_TRIPPED]


@pytest.mark.parametrize("level", ["pause", "halt", "flatten"])
def test_every_level_can_be_tripped_from_the_page(ada, deployment, level):
    ada.post(f"/deployments/{deployment.pk}/kill-switch/", {"level": level, "confirm": "on"})
    assert KillSwitch.objects.get().level == level


def test_staff_and_strangers_may_not_trip_someone_elses_deployment(client, staff_user, other_user, deployment):
    client.force_login(staff_user)
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'id="trip-form"' not in page and 'id="kill-switch"' in page
    assert client.post(f"/deployments/{deployment.pk}/kill-switch/", {"level": "halt", "confirm": "on"}
                       ).status_code == 403
    client.force_login(other_user)
    assert client.post(f"/deployments/{deployment.pk}/kill-switch/", {"level": "halt", "confirm": "on"}
                       ).status_code == 404
    assert client.post(f"/deployments/{deployment.pk}/kill-switch/lift/").status_code == 404
    assert not KillSwitch.objects.exists()


def test_the_kill_switch_page_offers_your_switch_and_only_superusers_the_global_one(client, user, superuser,
                                                                                     deployment):
    client.force_login(user)
    response = client.get("/risk/kill-switch/")
    page = response.content.decode()
    assert 'id="user-trip-form"' in page and 'id="global-trip-form"' not in page and 'id="none-latched"' in page

    refused = client.post("/risk/kill-switch/", {"scope": "global", "global-level": "halt", "global-confirm": "on"})
    assert refused.status_code == 403 and GLOBAL_ONLY_SUPERUSER in refused.content.decode()
    unconfirmed = client.post("/risk/kill-switch/", {"scope": "user", "user-level": "halt"})
    assert shown(unconfirmed, "user-trip-form").errors["user-confirm"] == [CONFIRM_TRIP_REQUIRED]
    assert not KillSwitch.objects.exists()

    client.post("/risk/kill-switch/", {"scope": "user", "user-level": "flatten", "user-confirm": "on"})
    mine = KillSwitch.objects.get()
    assert (mine.scope, mine.user, mine.level) == ("user", user, "flatten")
    assert banner(client.get(f"/deployments/{deployment.pk}/").content.decode()) == (
        "Kill switch latched: FLATTEN on every deployment of ada. Kill switches")

    client.force_login(superuser)
    assert 'id="global-trip-form"' in client.get("/risk/kill-switch/").content.decode()
    client.post("/risk/kill-switch/", {"scope": "global", "global-level": "pause", "global-reason": "outage",
                                       "global-confirm": "on"})
    client.force_login(user)
    page = client.get("/").content.decode()
    assert banner(page) == ("Kill switch latched: FLATTEN on every deployment of ada; PAUSE on every deployment. "
                            "Kill switches")
    assert 'name="scope" value="global"' not in client.get("/risk/kill-switch/").content.decode()  # no Lift


def test_switches_are_lifted_on_the_kill_switch_page_by_those_who_may(client, user, superuser, other_user):
    emergency_stop("user", "halt", actor=user, user=user)
    emergency_stop("global", "pause", actor=superuser)
    client.force_login(user)
    assert client.post("/risk/kill-switch/lift/", {"scope": "global"}).status_code == 403
    lifted = client.post("/risk/kill-switch/lift/", {"scope": "user"})
    assert messages_of(lifted) == [LIFTED.format(what="all your deployments")]

    emergency_stop("user", "halt", actor=user, user=user)
    client.force_login(other_user)
    assert client.post("/risk/kill-switch/lift/", {"scope": "user", "user": str(user.pk)}).status_code == 403
    assert client.post("/risk/kill-switch/lift/", {"scope": "user", "user": "x"}).status_code == 404
    assert client.post("/risk/kill-switch/lift/", {"scope": "planet"}).status_code == 404
    client.force_login(superuser)
    page = client.get("/risk/kill-switch/").content.decode()
    assert page.count(">Lift</button>") == 2
    client.post("/risk/kill-switch/lift/", {"scope": "user", "user": str(user.pk)})
    client.post("/risk/kill-switch/lift/", {"scope": "global"})
    assert not KillSwitch.objects.filter(lifted_at__isnull=True).exists()


def test_the_banner_shows_only_switches_that_reach_you(client, user, other_user, dataset):
    theirs = make_deployment(strategy_of(other_user, dataset), owner=other_user)
    emergency_stop("deployment", "halt", actor=other_user, deployment=theirs)
    emergency_stop("user", "pause", actor=other_user, user=other_user)
    client.force_login(user)
    assert banner(client.get("/").content.decode()) is None
    client.force_login(other_user)
    assert banner(client.get("/").content.decode()) == (
        f"Kill switch latched: HALT on deployment #{theirs.pk}; PAUSE on every deployment of linus. Kill switches")


# ------------------------------------------------------------------------------------------- decisions

def test_a_deployments_page_shows_its_latest_decisions_and_refusals_apart(ada, deployment, strategy):
    approved = [decide(deployment, bar=bar) for bar in range(3)]
    refused = decide(deployment, bar=3, code="max_order_notional",
                     message="order notional would be 60,000, above the limit of 50,000")
    last = decide(deployment, bar=4, side="sell", quantity=0.25)
    other = make_deployment(strategy, name="another")
    decide(other, bar=0, code="symbol_not_allowed", message="A9 is not among the allowed symbols")

    page = ada.get(f"/deployments/{deployment.pk}/").content.decode()

    decisions = re.search(r'<table id="decisions">.*?</table>', page, re.S).group(0)
    assert re.findall(r'<tr data-id="(\d+)"', decisions) == [str(d.pk) for d in (last, refused, *approved[::-1])]
    assert f'<tr data-id="{refused.pk}" data-approved="false" class="refused">' in decisions
    refusals = re.search(r'<div class="alerts" id="refusals">.*?</div>', page, re.S).group(0)
    assert re.findall(r'<li data-id="(\d+)"', refusals) == [str(refused.pk)]
    assert "<strong>max_order_notional</strong> order notional would be 60,000, above the limit of 50,000" in refusals
    assert "bar 3 · buy 2 A0" in refusals and "A9" not in page
    assert f'data-decisions-after="{last.pk}"' in page


def test_a_deployment_without_decisions_says_so(ada, deployment):
    page = ada.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'data-decisions-after="0"' in page and "No decisions yet" in page and "No order refused." in page
