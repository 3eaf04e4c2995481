"""The trading admin: deployment actions through the services, the record view-only, and exchange keys
that go in through exchange_account_create and never come back out on any admin page."""
import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from strategies.models import Strategy
from trading import credentials
from trading.admin import ACTION_DONE, ACTION_REFUSED
from trading.models import Deployment, DeploymentEvent, EquityPoint, ExchangeAccount, Fill, Order, Position
from trading.services import deployment_transition, exchange_account_create
from trading.services.deployments import DEPLOYMENT_NOT_YOURS, NAME_TAKEN
from trading.services.transitions import ILLEGAL_TRANSITION

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:trading_deployment_changelist")
ACCOUNT_ADD = reverse("admin:trading_exchangeaccount_add")
API_KEY = "admin-api-key-5e1c7a9b3d2f4086"
SECRET = "admin-secret-93b1d5f7e2a4c608"


@pytest.fixture
def exchange_key(settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "EXCHANGE_KEY": Fernet.generate_key().decode()}


@pytest.fixture
def make_deployment(dataset):
    def make(owner, **fields) -> Deployment:
        strategy = Strategy.objects.filter(owner=owner).first() or Strategy.objects.create(
            owner=owner, name="s", task=Strategy.Task.PORTFOLIO_MANAGEMENT, agent="ppo", dataset=dataset,
            config={"task": "portfolio_management", "dataset": "synthetic", "agent": "ppo"})
        values = {"name": "paper AAA", "mode": "paper", "feed": "replay", "config": {"secret_sauce": 1},
                  "dataset_name": dataset.name, "symbols": ["AAA"], "checkpoint_path": "/srv/x/policy.pt",
                  "checkpoint_sha256": "0" * 64, "fee_rate": 0.001, "initial_cash": 1e6, **fields}
        return Deployment.objects.create(owner=owner, strategy=strategy, **values)

    return make


@pytest.fixture
def account(user, exchange_key) -> ExchangeAccount:
    return exchange_account_create(owner=user, name="main", exchange="binance", api_key=API_KEY, secret=SECRET)


def act(client, action: str, *deployments: Deployment) -> list[str]:
    # Followed to the changelist, which shows (and so uses up) the messages: each call gets its own.
    response = client.post(CHANGELIST, {"action": action, "_selected_action": [d.pk for d in deployments]},
                           follow=True)
    assert response.redirect_chain == [(CHANGELIST, 302)]
    return [str(m) for m in get_messages(response.wsgi_request)]


def page(client, deployment: Deployment) -> str:
    return client.get(reverse("admin:trading_deployment_change", args=[deployment.pk])).content.decode()


def status_of(deployment: Deployment) -> str:
    deployment.refresh_from_db()
    return deployment.status


# Deployments --------------------------------------------------------------------------------------

def test_the_changelist_marks_live_deployments_in_red(admin_client, user, account, make_deployment):
    make_deployment(user, name="paper one")
    make_deployment(user, name="live one", mode="live", feed="live", account=account)

    page = admin_client.get(CHANGELIST).content.decode()

    assert page.count('<strong style="color: #ba2121;">LIVE</strong>') == 1
    assert "paper one" in page and "live one" in page


def test_pause_resume_and_stop_go_through_the_services_and_report_what_they_cannot_move(
    admin_client, user, make_deployment,
):
    first = deployment_transition(deployment=make_deployment(user), to="running")
    pending = make_deployment(user)

    messages = act(admin_client, "pause_deployments", first, pending)
    assert (status_of(first), status_of(pending)) == ("paused", "pending")
    refusal = ILLEGAL_TRANSITION.format(pk=pending.pk, current="pending", to="paused")
    assert messages == [ACTION_REFUSED.format(pk=pending.pk, error=refusal),
                        ACTION_DONE.format(action="Paused", ids=str(first.pk))]
    assert first.error == "paused by admin"

    assert act(admin_client, "resume_deployments", first) == [ACTION_DONE.format(action="Resumed", ids=str(first.pk))]
    assert status_of(first) == "running"
    assert act(admin_client, "stop_deployments", first, pending) == [
        ACTION_DONE.format(action="Stopped", ids=f"{first.pk}, {pending.pk}")]
    assert (status_of(first), status_of(pending)) == ("stopped", "stopped")
    assert DeploymentEvent.objects.filter(deployment=first).count() == 4


def test_staff_act_only_on_their_own_deployments_and_see_no_one_elses_config(
    client, user, staff_user, make_deployment,
):
    staff_user.user_permissions.add(*Permission.objects.filter(content_type__app_label="trading"))
    client.force_login(staff_user)
    theirs = deployment_transition(deployment=make_deployment(user), to="running")
    own = deployment_transition(deployment=make_deployment(staff_user, config={"staff_own_config": 2}), to="running")

    messages = act(client, "stop_deployments", theirs, own)

    assert (status_of(theirs), status_of(own)) == ("running", "stopped")
    refusal = DEPLOYMENT_NOT_YOURS.format(pk=theirs.pk, owner="ada")
    assert ACTION_REFUSED.format(pk=theirs.pk, error=refusal) in messages
    assert "secret_sauce" not in page(client, theirs) and "staff_own_config" in page(client, own)


def test_the_deployment_page_edits_the_name_only_and_links_to_the_record(admin_client, user, make_deployment):
    deployment = make_deployment(user)
    Position.objects.create(deployment=deployment, symbol="AAA", quantity=2.0, last_price=10.0)
    url = reverse("admin:trading_deployment_change", args=[deployment.pk])

    page = admin_client.get(url).content.decode()

    assert 'name="name"' in page
    for field in ("status", "equity", "lease_owner", "checkpoint_sha256", "config", "broker_state", "error"):
        assert f'name="{field}"' not in page
    assert f"?deployment__id__exact={deployment.pk}" in page and "AAA" in page
    assert admin_client.get(reverse("admin:trading_deployment_add")).status_code == 403


def test_the_record_is_view_only(admin_client, user, make_deployment):
    deployment = make_deployment(user)
    order = Order.objects.create(deployment=deployment, client_order_id="o1", bar_index=1, bar_time="t1",
                                 symbol="AAA", side="buy", quantity=1.0, status="filled")
    fill = Fill.objects.create(deployment=deployment, order=order, fill_id="f1", symbol="AAA", side="buy",
                               quantity=1.0, price=10.0, fee=0.01, time="t1")
    point = EquityPoint.objects.create(deployment=deployment, bar_index=1, time="t1", equity=1e6, cash=1e6)
    event = DeploymentEvent.objects.create(deployment=deployment, severity="info", message="started")
    position = Position.objects.create(deployment=deployment, symbol="AAA", quantity=1.0, last_price=10.0)

    for row in (order, fill, point, event, position):
        name = f"admin:trading_{row._meta.model_name}"
        changelist = admin_client.get(reverse(f"{name}_changelist"), {"deployment__id__exact": deployment.pk})
        assert changelist.status_code == 200
        change = admin_client.get(reverse(f"{name}_change", args=[row.pk]))
        assert change.status_code == 200 and 'name="_save"' not in change.content.decode()
        assert admin_client.post(reverse(f"{name}_change", args=[row.pk]), {}).status_code == 403
        assert admin_client.get(reverse(f"{name}_add")).status_code == 403
        assert admin_client.get(reverse(f"{name}_delete", args=[row.pk])).status_code == 403


# Exchange accounts --------------------------------------------------------------------------------

def add_account(client, user, **fields):
    return client.post(ACCOUNT_ADD, {"owner": user.pk, "name": "main", "exchange": "binance", "api_key": API_KEY,
                                     "secret": SECRET, "base_url": "", "quote": "USDT", **fields})


def test_an_account_added_in_the_admin_is_sealed_by_the_service(admin_client, user, exchange_key):
    form = admin_client.get(ACCOUNT_ADD).content.decode()
    assert 'type="password" name="api_key"' in form and 'type="password" name="secret"' in form
    assert "_sealed" not in form

    response = add_account(admin_client, user, base_url="https://testnet.binance.vision")

    assert response.status_code == 302, response.content.decode()
    account = ExchangeAccount.objects.get()
    assert (account.owner, account.name, account.key_hint) == (user, "main", "4086")
    assert credentials.unseal(account.api_key_sealed) == API_KEY and credentials.unseal(account.secret_sealed) == SECRET


def test_the_account_pages_never_render_a_key_sealed_or_not(admin_client, account):
    for url in (reverse("admin:trading_exchangeaccount_change", args=[account.pk]),
                reverse("admin:trading_exchangeaccount_changelist")):
        page = admin_client.get(url).content.decode()
        assert account.name in page
        for secret in (API_KEY, SECRET, account.api_key_sealed, account.secret_sealed, "api_key_sealed",
                       "secret_sealed"):
            assert secret not in page
    change = reverse("admin:trading_exchangeaccount_change", args=[account.pk])
    assert admin_client.post(change, {"name": "renamed"}).status_code == 403


def test_an_account_the_service_refuses_is_answered_on_the_form_and_its_keys_not_echoed(
    admin_client, user, account, settings,
):
    taken = add_account(admin_client, user).content.decode()
    assert NAME_TAKEN.format(name="main").replace("'", "&#x27;") in taken
    assert API_KEY not in taken and SECRET not in taken

    settings.TRADEMASTER = {**settings.TRADEMASTER, "EXCHANGE_KEY": ""}
    page = add_account(admin_client, user, name="second").content.decode()
    assert "set TRADEMASTER_EXCHANGE_KEY" in page and API_KEY not in page and SECRET not in page
    assert ExchangeAccount.objects.count() == 1
