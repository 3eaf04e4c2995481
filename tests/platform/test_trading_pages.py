"""The deployment pages: the list, a deployment's page, its actions and the Deploy form, for the owner,
staff and everyone else; the LIVE markers; refusals as messages, never a 500.

The record is written as the trading process writes it (tests/platform/deployment_helpers.py), so each
number a page shows is one a person can check against the rows here.
"""
import re

import pytest
from cryptography.fernet import Fernet
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.selectors import BEST_CHECKPOINT
from sessions.services import session_transition
from tests.platform.deployment_helpers import add_event, fill_order, make_deployment, place_order, trade_bar
from tests.platform.html_forms import shown
from trademaster_web.error_pages import NOT_FOUND
from trading.forms import CONFIRM_LIVE_REQUIRED
from trading.models import Deployment
from trading.services import exchange_account_create
from trading.services.deployments import LIVE_NEEDS_ACCOUNT, LIVE_NEEDS_LIVE_FEED, NOT_POSITIVE
from trading.views import CREATED, PAUSED, RESUMED, STOPPED

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def exchange_key(settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "EXCHANGE_KEY": Fernet.generate_key().decode()}


@pytest.fixture
def account(user, exchange_key):
    return exchange_account_create(owner=user, name="main", exchange="binance", api_key="live-api-key-abcdefgh1234",
                                   secret="secret")


@pytest.fixture
def traded(strategy):
    """ada's running paper deployment after three bars: a filled buy, an open sell, two positions."""
    deployment = make_deployment(strategy)
    trade_bar(deployment, bar=0, equity=100_000.0, cash=100_000.0, benchmark=100_000.0)
    buy = place_order(deployment, bar=0, symbol="A0", side="buy", quantity=2.0)
    fill_order(buy, price=12.5, fee=0.25)
    trade_bar(deployment, bar=1, equity=101_234.5, cash=99_974.75, benchmark=99_500.0, positions={"A0": 2.0})
    place_order(deployment, bar=1, symbol="A1", side="sell", quantity=1.5)
    trade_bar(deployment, bar=2, equity=100_800.0, cash=99_974.75, benchmark=99_000.0,
              positions={"A0": 2.0, "A1": 0.25}, price=13.0)
    add_event(deployment, "pending -> running")
    return Deployment.objects.get(pk=deployment.pk)


@pytest.fixture
def completed_training(make_strategy, user, runs_dir, deployments_dir):
    """A completed training session of ada's with a best checkpoint on disk (its bytes are not loaded
    by deploying: they are copied and hashed)."""
    strategy = make_strategy(user)
    session = StrategySession.objects.create(strategy=strategy, session_type=StrategySession.SessionType.TRAINING,
                                             config=strategy.config)
    for step in (S.QUEUED, S.RUNNING, S.COMPLETED):
        session_transition(session=session, to=step)
    best = runs_dir / str(session.pk) / BEST_CHECKPOINT
    best.parent.mkdir(parents=True)
    best.write_bytes(b"weights")
    return session


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def text_of(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert found, element_id
    return found.group(1).strip()


def buttons(page: str) -> list[str]:
    """The labels of the action buttons a page offers."""
    actions = re.search(r'id="actions">.*?</div>', page, re.S).group(0)
    return re.findall(r"<button[^>]*>(\w+)</button>", actions)


def title_of(page: str) -> str:
    return re.search(r"<title>(.*?)</title>", page, re.S).group(1)


# ---------------------------------------------------------------------------------------------- access

@pytest.mark.parametrize("path", ["/deployments/", "/deployments/1/", "/deployments/new?session=1"])
def test_anonymous_users_are_sent_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_someone_elses_deployment_is_the_sites_not_found_page(client, other_user, traded):
    client.force_login(other_user)

    for path in (f"/deployments/{traded.pk}/", f"/deployments/{traded.pk}/?part=actions"):
        response = client.get(path)
        assert response.status_code == 404 and NOT_FOUND in response.content.decode()
    for action in ("pause", "resume", "stop"):
        assert client.post(f"/deployments/{traded.pk}/{action}/").status_code == 404
    assert f"#{traded.pk} " not in client.get("/deployments/").content.decode()
    traded.refresh_from_db()
    assert traded.status == "running"


def test_staff_see_someone_elses_deployment_without_actions_and_may_not_act_on_it(client, staff_user, traded):
    client.force_login(staff_user)

    page = client.get(f"/deployments/{traded.pk}/").content.decode()
    assert text_of(page, "fig-equity") == "100,800.00"
    assert buttons(page) == []
    assert "ada" in client.get("/deployments/").content.decode()  # the owner column

    response = client.post(f"/deployments/{traded.pk}/stop/")
    assert response.status_code == 403 and "belongs to ada" in response.content.decode()
    traded.refresh_from_db()
    assert traded.status == "running"


def test_a_superuser_may_act_on_anyones_deployment(client, superuser, traded):
    client.force_login(superuser)

    assert client.post(f"/deployments/{traded.pk}/pause/").status_code == 302
    traded.refresh_from_db()
    assert traded.status == "paused"


@pytest.mark.parametrize("path", [
    "/deployments/0/", "/deployments/99999999999999999999/", "/deployments/99999999999999999999/?part=actions",
    "/deployments/new", "/deployments/new?session=abc", "/deployments/new?session=-1",
    "/deployments/new?session=99999999999999999999", "/deployments/new?session=0",
])
def test_bad_ids_are_not_found_not_an_error(ada, path):
    response = ada.get(path)
    assert response.status_code == 404 and NOT_FOUND in response.content.decode()


@pytest.mark.parametrize("action", ["pause", "resume", "stop"])
def test_actions_refuse_get_and_need_the_csrf_token(ada, user, traded, action):
    assert ada.get(f"/deployments/{traded.pk}/{action}/").status_code == 405
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.post(f"/deployments/{traded.pk}/{action}/").status_code == 403
    traded.refresh_from_db()
    assert traded.status == "running"


# ------------------------------------------------------------------------------------------------- list

def test_the_list_shows_each_deployments_mode_status_and_figures(ada, traded, strategy, other_user):
    paused = make_deployment(strategy, status="paused", name="idle one")
    make_deployment(strategy, owner=other_user, name="not ada's")

    page = ada.get("/deployments/").content.decode()

    row = re.search(rf'<tr data-id="{traded.pk}".*?</tr>', page, re.S).group(0)
    assert reverse("deployments:detail", args=[traded.pk]) in row and traded.name in row
    assert "Paper" in row and "LIVE" not in row and "Running" in row
    assert "100,800.00" in row  # equity
    assert "+800.00" in row  # today: 100,800 - 100,000 at the day's first bar
    assert "-0.43%" in row  # drawdown: 100,800 / 101,234.5 - 1
    assert "2003-01-03" in row and "(3 bars)" in row
    idle = re.search(rf'<tr data-id="{paused.pk}".*?</tr>', page, re.S).group(0)
    assert "Paused" in idle and idle.count("—") == 4  # no bar yet: no equity, PnL, drawdown, last bar
    assert "not ada&#39;s" not in page and "not ada's" not in page
    assert "LIVE" not in title_of(page)


def test_the_list_says_when_there_are_none(ada):
    assert "No deployments yet" in ada.get("/deployments/").content.decode()


def test_a_live_deployment_is_marked_live_in_red_in_the_list_and_its_title(ada, strategy, account):
    live = make_deployment(strategy, mode="live", account=account, name="real money")

    page = ada.get("/deployments/").content.decode()

    row = re.search(rf'<tr data-id="{live.pk}" data-mode="live" class="live-row">.*?</tr>', page, re.S).group(0)
    assert '<span class="mode mode-live"' in row and ">LIVE</span>" in row
    assert title_of(page).startswith("LIVE (1) · Deployments")


# ----------------------------------------------------------------------------------------------- detail

def test_the_page_shows_the_record_figures_positions_orders_fills_and_events(ada, traded):
    page = ada.get(f"/deployments/{traded.pk}/").content.decode()

    assert text_of(page, "fig-equity") == "100,800.00"
    assert text_of(page, "fig-cash") == "99,974.75"
    assert text_of(page, "fig-pnl") == "+800.00"
    assert text_of(page, "fig-pnl-today") == "+800.00"
    assert text_of(page, "fig-drawdown") == "-0.43%"
    assert text_of(page, "fig-last-bar") == "2003-01-03 (bar 2)"
    assert text_of(page, "fig-bars") == "3"
    positions = re.search(r'<table id="positions">.*?</table>', page, re.S).group(0)
    # Quantity, last price, value = quantity x last price.
    assert re.search(r'data-symbol="A0"><td>A0</td><td class="num">2</td><td class="num">13</td>'
                     r'<td class="num">26.00</td>', positions)
    assert re.search(r'data-symbol="A1"><td>A1</td><td class="num">0.25</td><td class="num">13</td>'
                     r'<td class="num">3.25</td>', positions)
    open_orders = re.search(r'<table id="open-orders">.*?</table>', page, re.S).group(0)
    assert 'data-status="accepted"' in open_orders and "sell" in open_orders and "filled" not in open_orders
    fills = re.search(r'<table id="fills">.*?</table>', page, re.S).group(0)
    assert "12.5" in fills and "0.25" in fills and "buy" in fills
    assert '<tr class="empty" hidden>' in fills
    orders = re.search(r'<table id="orders">.*?</table>', page, re.S).group(0)
    assert orders.index('data-status="accepted"') < orders.index('data-status="filled"')  # newest first
    assert "pending -&gt; running" in page
    # The stream starts after what the page shows; orders before the oldest open one.
    open_id = traded.orders.get(status="accepted").pk
    assert f'data-orders-after="{open_id - 1}"' in page
    assert f'data-fills-after="{traded.fills.get().pk}"' in page
    assert f'data-events-after="{traded.events.first().pk}"' in page
    assert "/static/js/deployment_live.js" in page and "/static/js/charts.js" in page
    assert 'id="chart-equity"' in page


def test_a_new_deployment_shows_dashes_and_says_what_it_has_not_got_yet(ada, strategy):
    deployment = make_deployment(strategy, status="pending")

    page = ada.get(f"/deployments/{deployment.pk}/").content.decode()

    for figure in ("fig-equity", "fig-cash", "fig-pnl", "fig-pnl-today", "fig-drawdown", "fig-last-bar"):
        assert text_of(page, figure) == "—", figure
    for empty in ("No positions yet.", "No open orders.", "No fills yet.", "No orders yet.", "No events yet.",
                  "No equity points yet"):
        assert empty in page
    assert '<tr class="empty" hidden>' not in page
    # Nothing to pause or resume before a trading process starts it; it can be stopped.
    assert buttons(page) == ["Stop"]


def test_a_halted_deployment_says_why_prominently_and_offers_resume_and_stop(ada, strategy):
    deployment = make_deployment(strategy, status="halted",
                                 error="halted: its record and its broker disagree: position A0")
    add_event(deployment, "running -> halted: its record and its broker disagree", severity="critical")

    page = ada.get(f"/deployments/{deployment.pk}/").content.decode()

    assert re.search(r'<p class="error halt" role="alert"><strong>Halted:</strong> halted: its record and its '
                     r"broker disagree: position A0</p>", page)
    assert re.search(r'class="alert alert-critical">.*?<strong>CRITICAL</strong> running -&gt; halted', page, re.S)
    assert buttons(page) == ["Resume", "Stop"]


def test_the_actions_part_is_the_pages_own_actions_alone(ada, traded):
    part = ada.get(f"/deployments/{traded.pk}/?part=actions").content.decode()
    assert 'id="actions"' in part and 'id="why"' in part and "<html" not in part
    assert buttons(part) == ["Pause", "Stop"]


def test_a_live_deployment_has_a_red_banner_naming_its_account_and_live_in_its_title(ada, strategy, account):
    live = make_deployment(strategy, mode="live", account=account)

    page = ada.get(f"/deployments/{live.pk}/").content.decode()

    banner = re.search(r'<p class="live-banner" id="live-banner" role="alert">(.*?)</p>', page).group(1)
    assert banner == "LIVE — real orders on main (binance, …1234)"
    assert page.index("live-banner") < page.index("<h1>")
    assert title_of(page).startswith("LIVE · ")


def test_a_paper_deployment_has_no_live_banner(ada, traded):
    page = ada.get(f"/deployments/{traded.pk}/").content.decode()
    assert 'id="live-banner"' not in page and "LIVE" not in title_of(page)


# ---------------------------------------------------------------------------------------------- actions

def test_pause_resume_and_stop_go_through_the_services(ada, traded):
    response = ada.post(f"/deployments/{traded.pk}/pause/")
    assert response.status_code == 302 and response.url == f"/deployments/{traded.pk}/"
    assert messages_of(response) == [PAUSED.format(pk=traded.pk)]
    traded.refresh_from_db()
    assert traded.status == "paused" and traded.error == "paused by ada"

    # Each message is shown on the page the action leads back to.
    page = ada.post(f"/deployments/{traded.pk}/resume/", follow=True).content.decode()
    assert RESUMED.format(pk=traded.pk) in page and PAUSED.format(pk=traded.pk) in page
    assert STOPPED.format(pk=traded.pk) in ada.post(f"/deployments/{traded.pk}/stop/", follow=True).content.decode()
    traded.refresh_from_db()
    assert traded.status == "stopped"
    assert buttons(ada.get(f"/deployments/{traded.pk}/").content.decode()) == []


def test_an_action_the_status_does_not_allow_comes_back_as_a_message(ada, traded):
    response = ada.post(f"/deployments/{traded.pk}/resume/", follow=True)

    assert response.status_code == 200
    assert "cannot move deployment" in response.content.decode() and "from &#39;running&#39; to" in (
        response.content.decode())
    ada.post(f"/deployments/{traded.pk}/stop/")
    response = ada.post(f"/deployments/{traded.pk}/stop/", follow=True)
    assert response.status_code == 200 and "it has ended" in response.content.decode()


# ---------------------------------------------------------------------------------------------- the nav

def test_the_nav_shows_live_while_a_live_deployment_of_the_user_runs(ada, client, strategy, account, other_user):
    assert 'id="nav-live"' not in ada.get("/").content.decode()
    assert reverse("deployments:list") in ada.get("/").content.decode()  # the Deployments link

    live = make_deployment(strategy, mode="live", account=account)
    for path in ("/", "/sessions/", "/deployments/", f"/deployments/{live.pk}/"):
        assert re.search(r'<a class="mode mode-live" id="nav-live"[^>]*>LIVE</a>', ada.get(path).content.decode()), path

    other = Client()
    other.force_login(other_user)
    assert 'id="nav-live"' not in other.get("/").content.decode()

    ada.post(f"/deployments/{live.pk}/pause/")
    assert 'id="nav-live"' not in ada.get("/").content.decode()


def test_a_paper_deployment_running_shows_no_live_marker(ada, traded):
    assert 'id="nav-live"' not in ada.get("/").content.decode()


# ------------------------------------------------------------------------------------------- deploying

def test_a_completed_trainings_page_has_the_deploy_form(ada, completed_training, account):
    response = ada.get(reverse("sessions:detail", args=[completed_training.pk]))
    page = response.content.decode()

    form = shown(response, "deploy-form")
    assert form.values == {"csrfmiddlewaretoken": form.values["csrfmiddlewaretoken"],
                           "session": str(completed_training.pk), "mode": "paper", "feed": "replay",
                           "account": "", "fill_model": "close", "bars_per_second": ""}
    assert f'action="{reverse("deployments:new")}"' in page
    assert f'<option value="{account.pk}">main (binance, …1234)</option>' in page
    assert "I understand this sends real orders" in page


def test_only_a_completed_training_and_only_its_owner_get_the_deploy_form(ada, client, staff_user, make_session,
                                                                          completed_training):
    running = make_session(S.RUNNING)
    assert 'id="deploy-form"' not in ada.get(reverse("sessions:detail", args=[running.pk])).content.decode()
    client.force_login(staff_user)
    page = client.get(reverse("sessions:detail", args=[completed_training.pk]))
    assert page.status_code == 200 and 'id="deploy-form"' not in page.content.decode()


def test_deploying_on_paper_creates_the_deployment_and_opens_its_page(ada, completed_training):
    response = ada.post("/deployments/new", {"session": completed_training.pk, "mode": "paper", "feed": "replay",
                                             "fill_model": "next_open", "bars_per_second": "4"})

    deployment = Deployment.objects.get()
    assert response.status_code == 302 and response.url == f"/deployments/{deployment.pk}/"
    assert messages_of(response) == [CREATED.format(pk=deployment.pk)]
    assert (deployment.mode, deployment.feed, deployment.fill_model, deployment.bars_per_second) == (
        "paper", "replay", "next_open", 4.0)
    assert deployment.session == completed_training and deployment.status == "pending"


def test_the_deploy_page_shows_the_form_for_a_session(ada, completed_training):
    response = ada.get(f"/deployments/new?session={completed_training.pk}")
    form = shown(response, "deploy-form")
    assert form.values["session"] == str(completed_training.pk) and form.values["mode"] == "paper"


def test_live_needs_the_confirmation_box_ticked(ada, completed_training, account):
    response = ada.post("/deployments/new", {"session": completed_training.pk, "mode": "live", "feed": "live",
                                             "account": account.pk, "fill_model": "close"})

    assert response.status_code == 200
    assert shown(response, "deploy-form").errors == {"confirm_live": [CONFIRM_LIVE_REQUIRED]}
    assert not Deployment.objects.exists()


@pytest.mark.parametrize(("values", "field", "message"), [
    ({"mode": "live", "feed": "live"}, "account", LIVE_NEEDS_ACCOUNT),
    ({"mode": "live", "feed": "replay", "account": "ACCOUNT"}, "feed", LIVE_NEEDS_LIVE_FEED),
    ({"bars_per_second": "0"}, "bars_per_second", NOT_POSITIVE),
    ({"bars_per_second": "nan"}, "bars_per_second", "Enter a number."),
    ({"bars_per_second": "-1"}, "bars_per_second", "Ensure this value is greater than or equal to 0."),
    ({"bars_per_second": "fast"}, "bars_per_second", "Enter a number."),
    ({"mode": "sideways"}, "mode", "Select a valid choice. sideways is not one of the available choices."),
    ({"account": "999999999"}, "account", "Select a valid choice. That choice is not one of the available choices."),
])
def test_a_refused_deploy_shows_the_form_again_with_the_fields_message(ada, completed_training, account, values,
                                                                      field, message):
    data = {"session": completed_training.pk, "mode": "paper", "feed": "replay", "fill_model": "close",
            "confirm_live": "on", **values}
    if data.get("account") == "ACCOUNT":
        data["account"] = account.pk

    response = ada.post("/deployments/new", data)

    assert response.status_code == 200
    assert shown(response, "deploy-form").errors == {field: [message]}
    assert not Deployment.objects.exists()


def test_someone_elses_exchange_account_is_not_a_choice(ada, completed_training, other_user, exchange_key):
    theirs = exchange_account_create(owner=other_user, name="theirs", exchange="binance", api_key="k-9999",
                                     secret="s")
    response = ada.post("/deployments/new", {"session": completed_training.pk, "mode": "live", "feed": "live",
                                             "account": theirs.pk, "fill_model": "close", "confirm_live": "on"})
    assert "account" in shown(response, "deploy-form").errors and not Deployment.objects.exists()


def test_deploying_live_with_the_box_ticked_opens_a_page_with_the_live_banner(ada, completed_training, account):
    response = ada.post("/deployments/new", {"session": completed_training.pk, "mode": "live", "feed": "live",
                                             "account": account.pk, "fill_model": "close", "confirm_live": "on"},
                        follow=True)

    deployment = Deployment.objects.get()
    assert deployment.mode == "live" and deployment.account == account
    page = response.content.decode()
    assert "LIVE deployment" in page and "LIVE — real orders on main (binance, …1234)" in page


def test_a_session_that_cannot_be_deployed_is_refused_with_the_reason(ada, make_session, runs_dir, deployments_dir):
    running = make_session(S.RUNNING)

    response = ada.post("/deployments/new", {"session": running.pk, "mode": "paper", "feed": "replay",
                                             "fill_model": "close"})

    assert response.status_code == 200
    assert "only a completed training can be deployed" in shown(response, "deploy-form").errors["__all__"][0]
    assert not Deployment.objects.exists()


def test_deploying_someone_elses_session_is_not_found_and_staff_are_forbidden(client, other_user, staff_user,
                                                                              completed_training):
    data = {"session": completed_training.pk, "mode": "paper", "feed": "replay", "fill_model": "close"}
    client.force_login(other_user)
    assert client.post("/deployments/new", data).status_code == 404
    assert client.get(f"/deployments/new?session={completed_training.pk}").status_code == 404
    client.force_login(staff_user)
    assert client.post("/deployments/new", data).status_code == 403
    response = client.get(f"/deployments/new?session={completed_training.pk}")
    assert response.status_code == 403 and "only its owner or a superuser can deploy it" in response.content.decode()
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("session", ["", "abc", "-3", "99999999999999999999"])
def test_a_deploy_post_naming_no_session_is_not_found(ada, session):
    response = ada.post("/deployments/new", {"session": session, "mode": "paper"})
    assert response.status_code == 404 and NOT_FOUND in response.content.decode()
