"""The risk API contract: limits per scope (system-wide ceiling, user, strategy, deployment) with their
change history and a deployment's effective limits, the risk decisions' id-cursor pages, and the kill
switches; who reads and who changes what; every refusal in the one error shape, naming the field."""
import pytest

from common.ids import MAX_ID
from risk.limits import ABOVE_CEILING as ABOVE
from risk.limits import UNSET_UNDER_CEILING
from risk.models import KillSwitch, LimitChange, RiskLimit
from risk.services import ABOVE_CEILING, GLOBAL_ONLY_SUPERUSER, NOT_YOURS, NOTHING_TRIPPED, kill_level_for, limits_for
from tests.platform.deployment_helpers import make_deployment
from tests.platform.risk_helpers import decide, strategy_of
from tests.platform.test_api import error_of, locs
from trading.risk_api import ONLY_FOR_DEPLOYMENT
from trading.selectors import DEPLOYMENT_NOT_FOUND

pytestmark = pytest.mark.django_db

UNSET = {
    "max_order_notional": None, "max_position_fraction": None, "max_position_units": None,
    "max_gross_exposure": None, "daily_loss_money": None, "daily_loss_pct": None, "max_drawdown_money": None,
    "max_drawdown_pct": None, "max_orders_per_minute": None, "max_open_orders": None, "price_band_pct": None,
    "allowed_symbols": None, "trading_hours": None, "breach_level": "halt",
}
RECORD_FIELDS = {"scope", "limits", "updated_by", "updated_at", "changes"}
SWITCH_FIELDS = {"id", "scope", "level", "reason", "automatic", "user", "deployment", "tripped_by", "tripped_at",
                 "lifted_by", "lifted_at"}
DECISION_FIELDS = {"id", "client_order_id", "bar_index", "symbol", "side", "quantity", "approved", "code", "message",
                   "values", "created_at"}


class Api:
    def __init__(self, client, headers: dict):
        self.client, self.headers = client, headers

    def get(self, url: str, **params):
        return self.client.get(url, params, headers=self.headers)

    def put(self, url: str, body: dict):
        return self.client.put(url, body, content_type="application/json", headers=self.headers)

    def post(self, url: str, body: dict):
        return self.client.post(url, body, content_type="application/json", headers=self.headers)


@pytest.fixture
def api_of(client, bearer):
    return lambda user: Api(client, bearer(user))


@pytest.fixture
def ada(api_of, user):
    return api_of(user)


@pytest.fixture
def root(api_of, superuser):
    return api_of(superuser)


@pytest.fixture
def deployment(strategy):
    return make_deployment(strategy)


@pytest.fixture
def theirs(other_user, dataset):
    """linus's running deployment, of his own strategy."""
    return make_deployment(strategy_of(other_user, dataset), owner=other_user)


# Limits ---------------------------------------------------------------------------------------------

def test_limits_never_set_read_as_every_limit_unset(ada, strategy, deployment):
    for url in ("/api/risk/limits/system", "/api/risk/limits/user", f"/api/risk/limits/strategies/{strategy.pk}"):
        body = ada.get(url).json()
        assert set(body) == RECORD_FIELDS and body["limits"] == UNSET, url
        assert (body["updated_by"], body["updated_at"], body["changes"]) == (None, None, [])

    body = ada.get(f"/api/deployments/{deployment.pk}/risk-limits").json()
    assert set(body) == RECORD_FIELDS | {"effective"}
    assert body["scope"] == "deployment" and body["limits"] == body["effective"] == UNSET


def test_your_limits_are_replaced_by_each_put_and_every_change_is_recorded(ada, user):
    first = ada.put("/api/risk/limits/user", {"max_order_notional": 50_000, "allowed_symbols": ["A1", "A0"],
                                              "trading_hours": {"start": "09:30", "end": "16:00",
                                                                "weekdays": [4, 0, 1]}})
    assert first.status_code == 200, first.content
    limits = {**UNSET, "max_order_notional": 50_000.0, "allowed_symbols": ["A0", "A1"],
              "trading_hours": {"start": "09:30", "end": "16:00", "weekdays": [0, 1, 4]}}
    assert first.json()["limits"] == limits and first.json()["updated_by"] == "ada"

    second = ada.put("/api/risk/limits/user", {"max_open_orders": 3, "breach_level": "flatten"}).json()

    assert second["limits"] == {**UNSET, "max_open_orders": 3, "breach_level": "flatten"}  # replaced, not merged
    assert [(c["changed_by"], c["before"], c["after"]) for c in second["changes"]] == [
        ("ada", limits, second["limits"]), ("ada", {}, limits)]  # newest first
    assert ada.get("/api/risk/limits/user").json() == second
    row = RiskLimit.objects.get(scope="user", user=user)
    assert LimitChange.objects.filter(limit=row).count() == 2


def test_only_a_superuser_sets_the_system_wide_ceiling_which_anyone_reads(ada, root):
    refused = error_of(ada.put("/api/risk/limits/system", {"max_order_notional": 1}), 403, "forbidden")
    assert refused["message"] == GLOBAL_ONLY_SUPERUSER and not RiskLimit.objects.exists()

    response = root.put("/api/risk/limits/system", {"max_order_notional": 100_000, "daily_loss_pct": 10})

    assert response.status_code == 200, response.content
    assert ada.get("/api/risk/limits/system").json() == response.json()
    assert response.json()["limits"] == {**UNSET, "max_order_notional": 100_000.0, "daily_loss_pct": 10.0}


def test_limits_looser_than_the_ceiling_are_422_naming_each_field(ada, root):
    root.put("/api/risk/limits/system", {"max_order_notional": 100_000, "daily_loss_pct": 10,
                                         "breach_level": "flatten"})

    error = error_of(ada.put("/api/risk/limits/user", {"max_order_notional": 150_000, "breach_level": "flatten"}),
                     422, "validation_error")

    assert error["fields"] == [
        {"loc": ["max_order_notional"],
         "message": ABOVE_CEILING.format(message=ABOVE.format(value=150_000.0, ceiling=100_000.0))},
        {"loc": ["daily_loss_pct"], "message": ABOVE_CEILING.format(message=UNSET_UNDER_CEILING.format(ceiling=10.0))},
    ]
    assert not RiskLimit.objects.filter(scope="user").exists()
    milder = error_of(ada.put("/api/risk/limits/user", {"max_order_notional": 1, "daily_loss_pct": 1}),
                      422, "validation_error")
    assert locs(milder) == [["breach_level"]]
    within = ada.put("/api/risk/limits/user", {"max_order_notional": 100_000, "daily_loss_pct": 2.5,
                                               "breach_level": "flatten"})
    assert within.status_code == 200, within.content


@pytest.mark.parametrize("body, loc", [
    ({"max_order_notional": 0}, ["max_order_notional"]),
    ({"max_order_notional": -5}, ["max_order_notional"]),
    ({"max_order_notional": 1e16}, ["max_order_notional"]),
    ({"max_order_notional": "5"}, ["max_order_notional"]),
    ({"max_order_notional": True}, ["max_order_notional"]),
    ({"daily_loss_pct": 100.5}, ["daily_loss_pct"]),
    ({"max_drawdown_pct": 0}, ["max_drawdown_pct"]),
    ({"max_open_orders": 0}, ["max_open_orders"]),
    ({"max_orders_per_minute": 1.5}, ["max_orders_per_minute"]),
    ({"max_orders_per_minute": 10**30}, ["max_orders_per_minute"]),
    ({"allowed_symbols": [""]}, ["allowed_symbols", 0]),
    ({"allowed_symbols": "A0"}, ["allowed_symbols"]),
    ({"allowed_symbols": ["A\u0000"]}, ["allowed_symbols", 0]),
    ({"trading_hours": {"start": "16:00", "end": "09:30"}}, ["trading_hours"]),
    ({"trading_hours": {"start": "24:30"}}, ["trading_hours"]),
    ({"trading_hours": {"start": "9:30"}}, ["trading_hours", "start"]),
    ({"trading_hours": {"weekdays": [7]}}, ["trading_hours", "weekdays", 0]),
    ({"trading_hours": {"weekdays": [False]}}, ["trading_hours", "weekdays", 0]),
    ({"breach_level": "panic"}, ["breach_level"]),
    ({"max_order_notionl": 5}, ["max_order_notionl"]),
])
def test_an_invalid_limit_is_422_naming_it_and_changes_nothing(ada, body, loc):
    assert locs(error_of(ada.put("/api/risk/limits/user", body), 422, "validation_error")) == [loc]
    assert not RiskLimit.objects.exists()


def test_a_number_json_allows_and_no_limit_can_hold_is_422_naming_it(ada):
    for text, loc in [('{"max_order_notional": NaN}', ["max_order_notional"]),
                      ('{"daily_loss_money": Infinity}', ["daily_loss_money"]),
                      ('{"max_open_orders": 1e999}', ["max_open_orders"])]:
        response = ada.client.put("/api/risk/limits/user", text, content_type="application/json", headers=ada.headers)
        assert locs(error_of(response, 422, "validation_error")) == [loc], text


def test_a_strategys_limits_are_its_owners_and_a_superusers(api_of, ada, root, user, staff_user, other_user,
                                                            strategy):
    url = f"/api/risk/limits/strategies/{strategy.pk}"
    assert ada.put(url, {"max_gross_exposure": 2}).status_code == 200
    assert root.put(url, {"max_gross_exposure": 1.5}).json()["limits"]["max_gross_exposure"] == 1.5
    assert [c["changed_by"] for c in ada.get(url).json()["changes"]] == ["root", "ada"]

    for stranger in (other_user, staff_user):  # staff do not see other users' strategies
        api = api_of(stranger)
        assert error_of(api.get(url), 404, "not_found")
        assert error_of(api.put(url, {"max_gross_exposure": 9}), 404, "not_found")
    for pk in (0, -1, MAX_ID, MAX_ID + 1, 10**30):
        assert ada.get(f"/api/risk/limits/strategies/{pk}").status_code in (404, 422), pk
    assert RiskLimit.objects.get(scope="strategy").limits["max_gross_exposure"] == 1.5


def test_a_deployments_effective_limits_are_the_tightest_of_every_scope(ada, root, strategy, deployment):
    # A table to check by hand: each limit's smallest, the symbols all allow, the most severe breach level.
    root.put("/api/risk/limits/system", {"max_order_notional": 100_000, "daily_loss_pct": 10})
    ada.put("/api/risk/limits/user", {"max_order_notional": 50_000, "daily_loss_pct": 5,
                                      "allowed_symbols": ["A0", "A1", "A2"]})
    ada.put(f"/api/risk/limits/strategies/{strategy.pk}", {"max_order_notional": 80_000, "daily_loss_pct": 8,
                                                           "max_open_orders": 3, "allowed_symbols": ["A0", "A1"]})

    response = ada.put(f"/api/deployments/{deployment.pk}/risk-limits",
                       {"max_order_notional": 60_000, "daily_loss_pct": 4, "breach_level": "flatten"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["limits"] == {**UNSET, "max_order_notional": 60_000.0, "daily_loss_pct": 4.0,
                              "breach_level": "flatten"}
    assert body["effective"] == {**UNSET, "max_order_notional": 50_000.0, "daily_loss_pct": 4.0,
                                 "max_open_orders": 3, "allowed_symbols": ["A0", "A1"], "breach_level": "flatten"}
    assert body["effective"] == limits_for(deployment).as_dict()
    assert ada.get(f"/api/deployments/{deployment.pk}/risk-limits").json() == body


def test_staff_read_a_deployments_limits_and_may_not_set_them_others_get_404(api_of, staff_user, other_user,
                                                                             deployment):
    url = f"/api/deployments/{deployment.pk}/risk-limits"
    staff = api_of(staff_user)
    assert staff.get(url).status_code == 200
    refused = error_of(staff.put(url, {"max_open_orders": 1}), 403, "forbidden")
    assert refused["message"] == NOT_YOURS.format(what="set these deployment limits")

    stranger = api_of(other_user)
    missing = error_of(stranger.get(url), 404, "not_found")
    assert missing["message"] == DEPLOYMENT_NOT_FOUND.format(pk=deployment.pk)
    error_of(stranger.put(url, {"max_open_orders": 1}), 404, "not_found")
    assert not RiskLimit.objects.exists()


# Decisions ------------------------------------------------------------------------------------------

def test_risk_decisions_come_in_id_cursor_pages(ada, deployment, theirs):
    made = [decide(deployment, bar=0), decide(deployment, bar=0, symbol="A1", side="sell", quantity=0.5),
            decide(deployment, bar=1, code="max_order_notional", message="order notional would be 60,000",
                   values={"limit": 50_000.0, "value": 60_000.0})]
    decide(theirs, bar=0)
    url = f"/api/deployments/{deployment.pk}/risk-decisions"

    first = ada.get(url, limit=2).json()
    rest = ada.get(url, after=first["next_after"], limit=2).json()
    done = ada.get(url, after=rest["next_after"]).json()

    assert [d["id"] for d in first["items"] + rest["items"]] == [d.pk for d in made]
    assert done == {"items": [], "next_after": made[-1].pk}
    refused = rest["items"][-1]
    assert set(refused) == DECISION_FIELDS
    assert (refused["approved"], refused["code"], refused["values"], refused["bar_index"]) == (
        False, "max_order_notional", {"limit": 50_000.0, "value": 60_000.0}, 1)
    assert first["items"][1]["quantity"] == 0.5 and first["items"][0]["approved"] is True


def test_risk_decisions_are_refused_for_a_bad_cursor_and_someone_elses_deployment(ada, deployment, theirs):
    url = f"/api/deployments/{deployment.pk}/risk-decisions"
    for query, field in [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"after": -1}, "after"),
                         ({"after": MAX_ID + 1}, "after")]:
        assert locs(error_of(ada.get(url, **query), 422, "validation_error")) == [[field]], query
    error_of(ada.get(f"/api/deployments/{theirs.pk}/risk-decisions"), 404, "not_found")


# Kill switches --------------------------------------------------------------------------------------

def test_your_switch_latches_rises_never_lowers_and_is_lifted_once(ada, user, deployment):
    tripped = ada.post("/api/risk/kill-switch", {"scope": "user", "level": "halt", "reason": "drill"})

    assert tripped.status_code == 200, tripped.content
    body = tripped.json()
    assert set(body) == SWITCH_FIELDS
    assert (body["scope"], body["level"], body["user"], body["tripped_by"], body["reason"], body["lifted_at"]) == (
        "user", "halt", "ada", "ada", "drill", None)
    assert kill_level_for(deployment) == 2
    assert ada.post("/api/risk/kill-switch", {"scope": "user", "level": "pause"}).json()["level"] == "halt"
    assert ada.post("/api/risk/kill-switch", {"scope": "user", "level": "flatten"}).json()["id"] == body["id"]
    assert [s["level"] for s in ada.get("/api/risk/kill-switch").json()] == ["flatten"]

    lifted = ada.post("/api/risk/kill-switch/lift", {"scope": "user"}).json()

    assert (lifted["id"], lifted["lifted_by"]) == (body["id"], "ada") and lifted["lifted_at"]
    assert kill_level_for(deployment) == 0 and ada.get("/api/risk/kill-switch").json() == []
    again = error_of(ada.post("/api/risk/kill-switch/lift", {"scope": "user"}), 409, "conflict")
    assert again["message"] == NOTHING_TRIPPED


def test_a_deployments_switch_is_its_owners_staff_get_403_others_404(api_of, ada, staff_user, other_user,
                                                                     deployment):
    trip = {"scope": "deployment", "level": "pause", "deployment": deployment.pk}
    forbidden = error_of(api_of(staff_user).post("/api/risk/kill-switch", trip), 403, "forbidden")
    assert forbidden["message"] == NOT_YOURS.format(what="stop this deployment")
    error_of(api_of(other_user).post("/api/risk/kill-switch", trip), 404, "not_found")
    assert not KillSwitch.objects.exists()

    body = ada.post("/api/risk/kill-switch", trip).json()

    assert (body["deployment"], body["level"], body["reason"]) == (deployment.pk, "pause", "tripped at pause")
    lift = {"scope": "deployment", "deployment": deployment.pk}
    error_of(api_of(other_user).post("/api/risk/kill-switch/lift", lift), 404, "not_found")
    error_of(api_of(staff_user).post("/api/risk/kill-switch/lift", lift), 403, "forbidden")
    assert ada.post("/api/risk/kill-switch/lift", lift).status_code == 200


def test_only_a_superuser_trips_and_lifts_the_global_switch_which_everyone_sees(api_of, ada, root, other_user):
    refused = error_of(ada.post("/api/risk/kill-switch", {"scope": "global", "level": "halt"}), 403, "forbidden")
    assert refused["message"] == GLOBAL_ONLY_SUPERUSER

    body = root.post("/api/risk/kill-switch", {"scope": "global", "level": "halt", "reason": "exchange outage"}).json()

    for api in (ada, api_of(other_user)):
        assert [(s["id"], s["scope"], s["reason"]) for s in api.get("/api/risk/kill-switch").json()] == [
            (body["id"], "global", "exchange outage")]
    error_of(ada.post("/api/risk/kill-switch/lift", {"scope": "global"}), 403, "forbidden")
    assert root.post("/api/risk/kill-switch/lift", {"scope": "global"}).status_code == 200


def test_you_see_your_own_switches_and_the_global_one_staff_see_every_one(api_of, ada, root, user, staff_user,
                                                                           other_user, deployment, theirs):
    linus = api_of(other_user)
    mine = ada.post("/api/risk/kill-switch", {"scope": "deployment", "level": "halt", "deployment": deployment.pk})
    his = linus.post("/api/risk/kill-switch", {"scope": "user", "level": "pause"})
    his_deployment = linus.post("/api/risk/kill-switch", {"scope": "deployment", "level": "flatten",
                                                          "deployment": theirs.pk})
    world = root.post("/api/risk/kill-switch", {"scope": "global", "level": "pause"})
    ids = [r.json()["id"] for r in (mine, his, his_deployment, world)]

    assert [s["id"] for s in ada.get("/api/risk/kill-switch").json()] == [ids[0], ids[3]]
    assert [s["id"] for s in linus.get("/api/risk/kill-switch").json()] == ids[1:]
    assert [s["id"] for s in api_of(staff_user).get("/api/risk/kill-switch").json()] == ids


@pytest.mark.parametrize("body, loc", [
    ({"scope": "deployment", "level": "halt"}, ["deployment"]),
    ({"scope": "user", "level": "halt", "deployment": 1}, ["deployment"]),
    ({"scope": "global", "level": "halt", "deployment": 1}, ["deployment"]),
    ({"scope": "planet", "level": "halt"}, ["scope"]),
    ({"scope": "user", "level": "nuke"}, ["level"]),
    ({"scope": "user"}, ["level"]),
    ({"scope": "deployment", "level": "halt", "deployment": 0}, ["deployment"]),
    ({"scope": "deployment", "level": "halt", "deployment": MAX_ID + 1}, ["deployment"]),
    ({"scope": "user", "level": "halt", "reason": "x" * 501}, ["reason"]),
    ({"scope": "user", "level": "halt", "reason": "a\u0000b"}, ["reason"]),
])
def test_a_bad_trip_is_422_naming_the_field_and_trips_nothing(ada, body, loc):
    assert locs(error_of(ada.post("/api/risk/kill-switch", body), 422, "validation_error")) == [loc]
    assert not KillSwitch.objects.exists()


def test_a_switch_scope_that_names_no_deployment_says_so(ada):
    error = error_of(ada.post("/api/risk/kill-switch", {"scope": "user", "level": "halt", "deployment": 1}),
                     422, "validation_error")
    assert error["fields"] == [{"loc": ["deployment"], "message": ONLY_FOR_DEPLOYMENT.format(scope="user")}]
    missing = error_of(ada.post("/api/risk/kill-switch/lift", {"scope": "deployment", "deployment": 10**12}),
                       404, "not_found")
    assert missing["message"] == DEPLOYMENT_NOT_FOUND.format(pk=10**12)


def test_every_risk_endpoint_needs_credentials(client, strategy, deployment):
    for method, url in [("get", "/api/risk/limits/system"), ("put", "/api/risk/limits/user"),
                        ("get", f"/api/risk/limits/strategies/{strategy.pk}"),
                        ("get", f"/api/deployments/{deployment.pk}/risk-limits"),
                        ("get", f"/api/deployments/{deployment.pk}/risk-decisions"),
                        ("get", "/api/risk/kill-switch"), ("post", "/api/risk/kill-switch"),
                        ("post", "/api/risk/kill-switch/lift")]:
        response = getattr(client, method)(url, {}, content_type="application/json")
        error_of(response, 401, "unauthorized")
