"""The deployments and exchange-accounts API contract: status codes, the one error shape, the id-cursor
pages of the record, who sees and acts on what, and exchange keys that never come back out."""
import pytest
from cryptography.fernet import Fernet

from common.ids import MAX_ID
from sessions.models import StrategySession
from strategies.models import Strategy
from tests.platform.test_api import error_of, locs
from tests.platform.test_trading_deployments import run_until
from trading import credentials
from trading.models import Deployment, DeploymentEvent, EquityPoint, ExchangeAccount, Fill, Order, Position
from trading.process import TradingProcess
from trading.schemas import UNKNOWN_EXCHANGE
from trading.selectors import DEPLOYMENT_NOT_FOUND
from trading.services import deployment_transition
from trading.services.deployments import (
    ACCOUNT_NOT_FOUND,
    ALREADY_FINAL,
    DEPLOYMENT_NOT_YOURS,
    LIVE_NEEDS_ACCOUNT,
    LIVE_NEEDS_LIVE_FEED,
    NAME_TAKEN,
    NOT_COMPLETED,
    SESSION_NOT_YOURS,
)
from trading.services.transitions import ILLEGAL_TRANSITION

pytestmark = pytest.mark.django_db

API_KEY = "test-api-key-7f3a9c2e51b4d8e6"
SECRET = "test-secret-0c4b8e2f6a1d9573b"
SUMMARY_FIELDS = {
    "id", "name", "owner", "mode", "is_live", "feed", "account", "status", "error", "strategy", "strategy_name",
    "session", "symbols", "dataset_name", "checkpoint_sha256", "fill_model", "fee_rate", "slippage_bps",
    "volume_cap", "initial_cash", "cash", "equity", "pnl", "pnl_today", "drawdown", "peak_equity", "last_bar",
    "last_bar_time", "bars_done", "replay_start", "replay_stop", "bars_per_second", "timeframe", "heartbeat_at",
    "created_at", "started_at", "stopped_at",
}
DETAIL_FIELDS = SUMMARY_FIELDS | {"config"}
ACCOUNT_FIELDS = {"name", "exchange", "base_url", "quote", "key_hint", "created_at"}


class Api:
    """One user's bearer-token client; every answer it got is kept, to check no key is in any."""

    answers: list = []

    def __init__(self, client, headers: dict):
        self.client, self.headers = client, headers

    def get(self, url: str, **params):
        return self._keep(self.client.get(url, params, headers=self.headers))

    def post(self, url: str, body: dict | None = None):
        return self._keep(self.client.post(url, body or {}, content_type="application/json", headers=self.headers))

    def _keep(self, response):
        Api.answers.append(response.content.decode())
        return response


@pytest.fixture
def api_of(client, bearer, caplog):
    """api_of(user) -> an Api of `user`. After the test: neither key in any answer or log line."""
    Api.answers = []
    yield lambda user: Api(client, bearer(user))
    for text in [*Api.answers, caplog.text]:
        assert API_KEY not in text and SECRET not in text


@pytest.fixture
def api(api_of, user):
    return api_of(user)


@pytest.fixture
def exchange_key(settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "EXCHANGE_KEY": Fernet.generate_key().decode()}


@pytest.fixture
def make_deployment(dataset):
    """make_deployment(owner, **fields) -> a deployment row as deployment_create leaves it (pending); its
    record is then written here as the trading process would write it."""

    def make(owner, **fields) -> Deployment:
        strategy = Strategy.objects.filter(owner=owner).first() or Strategy.objects.create(
            owner=owner, name=f"{owner.username}'s", task=Strategy.Task.PORTFOLIO_MANAGEMENT, agent="ppo",
            dataset=dataset, config={"task": "portfolio_management", "dataset": "synthetic", "agent": "ppo"})
        values = {"name": "paper AAA", "mode": "paper", "feed": "replay", "config": {"secret_sauce": 1},
                  "dataset_name": dataset.name, "symbols": ["AAA", "BBB"], "checkpoint_path": "/srv/x/policy.pt",
                  "checkpoint_sha256": "0" * 64, "fee_rate": 0.001, "initial_cash": 1e6, **fields}
        return Deployment.objects.create(owner=owner, strategy=strategy, **values)

    return make


def running(deployment: Deployment) -> Deployment:
    return deployment_transition(deployment=deployment, to="running")


# Exchange accounts --------------------------------------------------------------------------------

def account_body(**fields) -> dict:
    return {"name": "main", "exchange": "binance", "api_key": API_KEY, "secret": SECRET, **fields}


def test_an_exchange_account_is_stored_sealed_and_answered_without_its_keys(api, api_of, other_user, exchange_key):
    response = api.post("/api/exchange-accounts", account_body(base_url="https://testnet.binance.vision"))

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == ACCOUNT_FIELDS
    assert (body["name"], body["exchange"], body["quote"], body["key_hint"]) == ("main", "binance", "USDT", "d8e6")
    account = ExchangeAccount.objects.get()
    assert API_KEY not in account.api_key_sealed and SECRET not in account.secret_sealed
    assert credentials.unseal(account.api_key_sealed) == API_KEY and credentials.unseal(account.secret_sealed) == SECRET

    assert api.get("/api/exchange-accounts").json() == {"items": [body], "count": 1}
    assert api_of(other_user).get("/api/exchange-accounts").json() == {"items": [], "count": 0}


def test_an_exchange_account_is_refused_naming_the_field(api, exchange_key):
    assert api.post("/api/exchange-accounts", account_body()).status_code == 201

    taken = error_of(api.post("/api/exchange-accounts", account_body()), 409, "conflict")
    assert (taken["message"], locs(taken)) == (NAME_TAKEN.format(name="main"), [["name"]])
    unknown = error_of(api.post("/api/exchange-accounts", account_body(name="b", exchange="nasdaq")),
                       422, "validation_error")
    assert taken and unknown["fields"] == [{"loc": ["exchange"], "message": UNKNOWN_EXCHANGE}]
    for body, loc in [
        (account_body(name="c", base_url="not a url"), ["base_url"]),
        (account_body(name="d", api_key=""), ["api_key"]),
        (account_body(name="e", secret="x" * 1001), ["secret"]),
        (account_body(name=""), ["name"]),
        (account_body(name="f", passphrase="p"), ["passphrase"]),
        ({"name": "g", "exchange": "binance"}, ["api_key"]),
    ]:
        assert loc in locs(error_of(api.post("/api/exchange-accounts", body), 422, "validation_error")), body
    assert list(ExchangeAccount.objects.values_list("name", flat=True)) == ["main"]


def test_without_a_server_key_an_exchange_account_answers_503_and_stores_nothing(api, settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "EXCHANGE_KEY": ""}

    error = error_of(api.post("/api/exchange-accounts", account_body()), 503, "unavailable")

    assert error["message"] == credentials.NO_KEY and error["fields"] == []
    assert not ExchangeAccount.objects.exists()


# Deployments: create ------------------------------------------------------------------------------

def test_deploying_a_completed_training_answers_201_with_the_detail(api, user, trained_session):
    response = api.post("/api/deployments", {"session": trained_session.pk, "fill_model": "next_open",
                                             "slippage_bps": 2.5, "volume_cap": 0.1, "bars_per_second": 50})

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == DETAIL_FIELDS
    deployment = Deployment.objects.get()
    assert (body["id"], body["status"], body["mode"], body["is_live"], body["feed"], body["account"]) == (
        deployment.pk, "pending", "paper", False, "replay", None)
    assert (body["session"], body["strategy"], body["strategy_name"], body["owner"]) == (
        trained_session.pk, trained_session.strategy_id, trained_session.strategy.name, "ada")
    assert (body["fill_model"], body["slippage_bps"], body["volume_cap"], body["bars_per_second"]) == (
        "next_open", 2.5, 0.1, 50.0)
    assert body["config"] == trained_session.config and body["checkpoint_sha256"] == deployment.checkpoint_sha256
    assert body["replay_start"] < body["replay_stop"] and body["timeframe"] == ""
    assert body["name"] == f"{trained_session.strategy.name} #{trained_session.pk}"
    assert api.get(f"/api/deployments/{deployment.pk}").json() == body


def test_a_live_deployment_names_one_of_your_exchange_accounts(api, trained_session, exchange_key):
    api.post("/api/exchange-accounts", account_body(name="kraken main", exchange="kraken"))

    response = api.post("/api/deployments", {"session": trained_session.pk, "mode": "live", "feed": "live",
                                             "account": "kraken main", "timeframe": "5m"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["mode"], body["is_live"], body["feed"], body["account"], body["timeframe"]) == (
        "live", True, "live", "kraken main", "5m")
    assert (body["replay_start"], body["replay_stop"]) == (None, None)
    assert body["symbols"] == list(Deployment.objects.get().symbols) and len(body["symbols"]) == 5

    pairs = [f"C{i}/USDT" for i in range(5)]
    named = api.post("/api/deployments", {"session": trained_session.pk, "feed": "live", "account": "kraken main",
                                          "symbols": pairs})
    assert named.status_code == 201 and named.json()["symbols"] == pairs
    for symbols, loc in [(pairs[:4], ["symbols"]), ([*pairs[:4], pairs[0]], ["symbols"]),
                         (["x" * 51, *pairs[1:]], ["symbols", 0]), (["", *pairs[1:]], ["symbols", 0])]:
        body = {"session": trained_session.pk, "feed": "live", "account": "kraken main", "symbols": symbols}
        assert locs(error_of(api.post("/api/deployments", body), 422, "validation_error")) == [loc], symbols


def test_what_cannot_be_deployed_is_refused_naming_the_field(
    api, api_of, other_user, staff_user, trained_session, make_session, exchange_key,
):
    api.post("/api/exchange-accounts", account_body())
    session, unfinished = trained_session.pk, make_session(status="running").pk
    for body, field, message in [
        ({"session": session, "mode": "live"}, "account", LIVE_NEEDS_ACCOUNT),
        ({"session": session, "mode": "live", "account": "main"}, "feed", LIVE_NEEDS_LIVE_FEED),
        ({"session": session, "account": "nope"}, "account", ACCOUNT_NOT_FOUND.format(name="nope")),
        ({"session": unfinished}, "session", NOT_COMPLETED.format(pk=unfinished, status="running")),
    ]:
        error = error_of(api.post("/api/deployments", body), 422, "validation_error")
        assert error["fields"] == [{"loc": [field], "message": message}], body

    for body, loc in [
        ({"session": session, "bars_per_second": 0}, ["bars_per_second"]),
        ({"session": session, "slippage_bps": 10_000}, ["slippage_bps"]),
        ({"session": session, "volume_cap": 1.5}, ["volume_cap"]),
        ({"session": session, "timeframe": "1x"}, ["timeframe"]),
        ({"session": session, "mode": "margin"}, ["mode"]),
        ({"session": session, "fill_model": "vwap"}, ["fill_model"]),
        ({"session": session, "name": "n" * 201}, ["name"]),
        ({"session": session, "leverage": 3}, ["leverage"]),
        ({"session": MAX_ID + 1}, ["session"]),
        ({"session": 0}, ["session"]),
        ({}, ["session"]),
    ]:
        assert loc in locs(error_of(api.post("/api/deployments", body), 422, "validation_error")), body
    # Python's json reads NaN and Infinity; the API refuses them by path.
    for text in ('{"session": %d, "slippage_bps": NaN}', '{"session": %d, "volume_cap": Infinity}'):
        response = api.client.post("/api/deployments", text % session, content_type="application/json",
                                   headers=api.headers)
        assert len(locs(error_of(response, 422, "validation_error"))) == 1

    assert error_of(api.post("/api/deployments", {"session": 999_999}), 404, "not_found")
    assert error_of(api_of(other_user).post("/api/deployments", {"session": session}), 404, "not_found")
    forbidden = error_of(api_of(staff_user).post("/api/deployments", {"session": session}), 403, "forbidden")
    assert forbidden["message"] == SESSION_NOT_YOURS.format(pk=session, owner="ada")
    assert not Deployment.objects.exists()


def test_a_session_other_than_a_training_is_not_deployable(api, trained_session):
    backtest = StrategySession.objects.create(strategy=trained_session.strategy, session_type="backtest")
    error = error_of(api.post("/api/deployments", {"session": backtest.pk}), 422, "validation_error")
    assert locs(error) == [["session"]]


# Deployments: read --------------------------------------------------------------------------------

def test_the_list_shows_your_deployments_filtered_by_status_and_mode(
    api, api_of, user, other_user, staff_user, make_deployment, exchange_key,
):
    account = ExchangeAccount.objects.create(owner=user, name="main", exchange="binance", api_key_sealed="-",
                                             secret_sealed="-", key_hint="")
    paper = running(make_deployment(user))
    live = make_deployment(user, name="live AAA", mode="live", feed="live", account=account)
    theirs = make_deployment(other_user)

    def ids(client, **params):
        body = client.get("/api/deployments", **params).json()
        assert all(set(item) == SUMMARY_FIELDS for item in body["items"])
        return sorted(item["id"] for item in body["items"])

    assert ids(api) == sorted([paper.pk, live.pk])
    assert ids(api, status="running") == [paper.pk]
    assert ids(api, mode="live") == [live.pk]
    assert ids(api, mode="live", status="running") == []
    assert ids(api_of(other_user)) == [theirs.pk]
    assert ids(api_of(staff_user)) == sorted([paper.pk, live.pk, theirs.pk])
    assert ids(api, limit=1, offset=1) in ([paper.pk], [live.pk])
    assert locs(error_of(api.get("/api/deployments", status="dancing"), 422, "validation_error")) == [["status"]]
    assert locs(error_of(api.get("/api/deployments", mode="margin"), 422, "validation_error")) == [["mode"]]
    assert locs(error_of(api.get("/api/deployments", offset=-1), 422, "validation_error")) == [["offset"]]


def test_the_detail_shows_the_config_only_to_whoever_may_act(
    api, api_of, other_user, staff_user, superuser, make_deployment, user,
):
    deployment = make_deployment(user, error="cannot run: checkpoint /srv/deployments/7/policy.pt is gone")
    url = f"/api/deployments/{deployment.pk}"

    mine = api.get(url).json()
    assert mine["config"] == {"secret_sauce": 1}
    # A user reads why, without the server's paths; the operators read the whole error.
    assert mine["error"] == "cannot run: checkpoint policy.pt is gone"
    staff = api_of(staff_user).get(url).json()
    assert staff["config"] is None and staff["error"] == deployment.error
    assert api_of(superuser).get(url).json()["config"] == {"secret_sauce": 1}

    missing = error_of(api_of(other_user).get(url), 404, "not_found")
    assert missing["message"] == DEPLOYMENT_NOT_FOUND.format(pk=deployment.pk)
    for pk in (deployment.pk + 1000, 0, -1, MAX_ID, MAX_ID + 1, 10**30):
        assert error_of(api.get(f"/api/deployments/{pk}"), 404, "not_found")


# Deployments: act ---------------------------------------------------------------------------------

def test_pause_resume_and_stop_move_the_deployment_and_refuse_illegal_moves(api, make_deployment, user):
    deployment = running(make_deployment(user))
    url = f"/api/deployments/{deployment.pk}"

    paused = api.post(f"{url}/pause")
    assert paused.status_code == 200 and set(paused.json()) == DETAIL_FIELDS
    assert (paused.json()["status"], paused.json()["error"]) == ("paused", "paused by ada")
    again = error_of(api.post(f"{url}/pause"), 409, "conflict")
    assert again["message"] == ILLEGAL_TRANSITION.format(pk=deployment.pk, current="paused", to="paused")
    assert api.post(f"{url}/resume").json()["status"] == "running"
    assert error_of(api.post(f"{url}/resume"), 409, "conflict")
    stopped = api.post(f"{url}/stop").json()
    assert (stopped["status"], stopped["stopped_at"] is not None) == ("stopped", True)
    final = error_of(api.post(f"{url}/stop"), 409, "conflict")
    assert final["message"] == ALREADY_FINAL.format(pk=deployment.pk, status="stopped")
    assert error_of(api.post(f"{url}/resume"), 409, "conflict")

    events = [e["message"] for e in api.get(f"{url}/events").json()["items"]]
    assert events == ["pending -> running", "running -> paused: paused by ada", "paused -> running: resumed by ada",
                      "running -> stopped: stopped by ada"]


def test_only_the_owner_or_a_superuser_acts_on_a_deployment(
    api_of, user, other_user, staff_user, superuser, make_deployment,
):
    deployment = running(make_deployment(user))
    url = f"/api/deployments/{deployment.pk}"

    for action in ("pause", "resume", "stop"):
        assert error_of(api_of(other_user).post(f"{url}/{action}"), 404, "not_found")
        forbidden = error_of(api_of(staff_user).post(f"{url}/{action}"), 403, "forbidden")
        assert forbidden["message"] == DEPLOYMENT_NOT_YOURS.format(pk=deployment.pk, owner="ada")
    deployment.refresh_from_db()
    assert deployment.status == "running"
    assert api_of(superuser).post(f"{url}/pause").json()["status"] == "paused"


# The record ---------------------------------------------------------------------------------------

class Record:
    """Rows of a deployment's record, as the trading process appends them, one kind per page."""

    def __init__(self, deployment: Deployment):
        self.deployment, self.n = deployment, 0

    def order(self) -> Order:
        self.n += 1
        return Order.objects.create(deployment=self.deployment, client_order_id=f"o{self.n}", bar_index=self.n,
                                    bar_time=f"2024-01-{self.n:02d}", symbol="AAA", side="buy", quantity=1.5,
                                    status="filled", filled_quantity=1.5, average_price=100.0, fees=0.15)

    def fill(self) -> Fill:
        order = self.order()
        return Fill.objects.create(deployment=self.deployment, order=order, fill_id=f"f{self.n}", symbol="AAA",
                                   side="buy", quantity=1.5, price=100.0, fee=0.15, time=order.bar_time)

    def equity(self) -> EquityPoint:
        self.n += 1
        return EquityPoint.objects.create(deployment=self.deployment, bar_index=self.n, time=f"t{self.n}",
                                          equity=1e6 + self.n, cash=5e5, benchmark=None if self.n % 2 else 1e6)

    def events(self) -> DeploymentEvent:
        self.n += 1
        return DeploymentEvent.objects.create(deployment=self.deployment, severity="info", message=f"event {self.n}")

    orders, fills = order, fill


@pytest.mark.parametrize("kind", ["orders", "fills", "equity", "events"])
def test_a_cursor_pages_the_record_without_gaps_or_repeats_while_rows_are_appended(
    api, make_deployment, user, kind,
):
    deployment = make_deployment(user)
    record, other = Record(deployment), Record(make_deployment(user))
    appended = [getattr(record, kind)().pk for _ in range(5)]
    getattr(other, kind)()  # another deployment's rows are never on this one's pages
    url = f"/api/deployments/{deployment.pk}/{kind}"

    seen, after, pages = [], 0, 0
    while True:
        body = api.get(url, after=after, limit=2).json()
        assert set(body) == {"items", "next_after"}
        if not body["items"]:
            assert body["next_after"] == after
            break
        seen += [item["id"] for item in body["items"]]
        assert body["next_after"] == body["items"][-1]["id"]
        after, pages = body["next_after"], pages + 1
        if pages <= 2:  # rows the trading process records between two requests
            appended += [getattr(record, kind)().pk for _ in range(2)]

    assert seen == appended == sorted(appended) and len(set(seen)) == 9
    assert api.get(url, after=appended[-1]).json() == {"items": [], "next_after": appended[-1]}


def test_record_pages_have_their_fields_and_bounded_cursors(api, api_of, other_user, make_deployment, user):
    deployment = make_deployment(user, error="x")
    record = Record(deployment)
    fill = record.fill()
    point = record.equity()
    url = f"/api/deployments/{deployment.pk}"

    order = api.get(f"{url}/orders").json()["items"][0]
    assert (order["id"], order["client_order_id"], order["status"], order["refused_by_risk"]) == (
        fill.order_id, "o1", "filled", False)
    assert api.get(f"{url}/fills").json()["items"][0] | {"recorded_at": None} == {
        "id": fill.pk, "order": fill.order_id, "fill_id": "f1", "symbol": "AAA", "side": "buy", "quantity": 1.5,
        "price": 100.0, "fee": 0.15, "time": "2024-01-01", "recorded_at": None}
    assert api.get(f"{url}/equity").json()["items"] == [
        {"id": point.pk, "bar_index": 2, "time": "t2", "equity": 1e6 + 2, "cash": 5e5, "benchmark": 1e6}]

    for kind in ("orders", "fills", "equity", "events"):
        for params, loc in [({"after": -1}, ["after"]), ({"after": MAX_ID + 1}, ["after"]),
                            ({"limit": 0}, ["limit"]), ({"limit": 1001}, ["limit"])]:
            assert locs(error_of(api.get(f"{url}/{kind}", **params), 422, "validation_error")) == [loc]
        assert api.get(f"{url}/{kind}", after=MAX_ID, limit=1000).json()["items"] == []
        assert error_of(api_of(other_user).get(f"{url}/{kind}"), 404, "not_found")
    assert error_of(api_of(other_user).get(f"{url}/positions"), 404, "not_found")


def test_positions_are_valued_at_their_last_price(api, make_deployment, user):
    deployment = make_deployment(user)
    Position.objects.create(deployment=deployment, symbol="BBB", quantity=-2.0, last_price=50.0)
    Position.objects.create(deployment=deployment, symbol="AAA", quantity=3.0, last_price=None)

    assert api.get(f"/api/deployments/{deployment.pk}/positions").json() == [
        {"symbol": "AAA", "quantity": 3.0, "last_price": None, "value": None},
        {"symbol": "BBB", "quantity": -2.0, "last_price": 50.0, "value": -100.0},
    ]


def test_a_running_paper_deployment_is_read_back_through_the_api_as_the_process_recorded_it(
    api, user, trained_session,
):
    created = api.post("/api/deployments", {"session": trained_session.pk}).json()
    deployment = run_until(TradingProcess(), Deployment.objects.get(pk=created["id"]), set(), bars=6)
    url = f"/api/deployments/{deployment.pk}"

    detail = api.get(url).json()
    assert (detail["status"], detail["bars_done"], detail["last_bar"]) == ("running", 6, deployment.last_bar)
    assert detail["equity"] == deployment.equity and detail["pnl"] == deployment.equity - deployment.initial_cash
    assert detail["heartbeat_at"] is not None and detail["started_at"] is not None
    equity = api.get(f"{url}/equity").json()["items"]
    assert [p["equity"] for p in equity] == list(EquityPoint.objects.filter(deployment=deployment)
                                                 .order_by("pk").values_list("equity", flat=True))
    assert len(equity) == 6
    orders = api.get(f"{url}/orders").json()["items"]
    fills = api.get(f"{url}/fills").json()["items"]
    assert orders and fills and {f["order"] for f in fills} <= {o["id"] for o in orders}
    positions = api.get(f"{url}/positions").json()
    assert {p["symbol"] for p in positions} <= set(detail["symbols"])
    assert [e["message"] for e in api.get(f"{url}/events").json()["items"]][0].startswith("pending -> running")
