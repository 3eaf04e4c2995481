"""The JSON API contract: status codes, the one error shape, both kinds of authentication."""
import pytest
from django.test import Client

from accounts.services import api_token_create, api_token_revoke
from common.text import HAS_NUL, NOT_FINITE, NOT_UNICODE
from strategies.api import IMPORT_NEEDS_STAFF
from strategies.models import Dataset, Strategy
from strategies.services import OUTSIDE_IMPORT_DIR, UPLOAD_NOT_CSV, strategy_create
from trademaster_web.api import NOT_AN_OBJECT, TOO_LARGE

pytestmark = pytest.mark.django_db

PM = "portfolio_management"


def error_of(response, status: int, code: str) -> dict:
    """The error of a response, after checking it has the one error shape."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code and body["error"]["message"]
    for field in body["error"]["fields"]:
        assert set(field) == {"loc", "message"} and isinstance(field["loc"], list)
    return body["error"]


def locs(error: dict) -> list[list]:
    return [field["loc"] for field in error["fields"]]


@pytest.fixture
def as_user(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def make_strategy(dataset):
    def make(owner, name="momentum") -> Strategy:
        return strategy_create(owner=owner, name=name, task=PM, agent="ppo", dataset=dataset)

    return make


def new_strategy(dataset: Dataset, **fields) -> dict:
    return {"name": "momentum", "task": PM, "agent": "ppo", "dataset": dataset.pk, **fields}


# ------------------------------------------------------------------------------------ authentication

def test_no_credentials_is_401(client):
    error = error_of(client.get("/api/strategies"), 401, "unauthorized")

    assert error["fields"] == []


def test_a_post_without_credentials_is_401_not_a_csrf_refusal(dataset):
    client = Client(enforce_csrf_checks=True)

    response = client.post("/api/strategies", new_strategy(dataset), content_type="application/json")
    error_of(response, 401, "unauthorized")


def test_a_bearer_token_authenticates_and_needs_no_csrf_token(user, dataset, bearer):
    client = Client(enforce_csrf_checks=True)
    headers = bearer(user)

    response = client.post("/api/strategies", new_strategy(dataset), content_type="application/json", headers=headers)

    assert response.status_code == 201
    assert Strategy.objects.get().owner == user


def test_an_unknown_or_revoked_token_is_refused(client, user):
    token, plaintext = api_token_create(user=user, name="script")
    assert client.get("/api/strategies", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None

    api_token_revoke(token=token)

    error_of(client.get("/api/strategies", headers={"Authorization": f"Bearer {plaintext}"}), 401, "unauthorized")
    error_of(client.get("/api/strategies", headers={"Authorization": "Bearer not-a-token"}), 401, "unauthorized")


def test_the_login_session_authenticates(as_user, make_strategy, user):
    make_strategy(user)

    response = as_user.get("/api/strategies")

    assert response.status_code == 200 and [s["name"] for s in response.json()["items"]] == ["momentum"]


def test_a_session_post_without_the_csrf_token_is_403(user, dataset):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post("/api/strategies", new_strategy(dataset), content_type="application/json")

    error_of(response, 403, "forbidden")
    assert not Strategy.objects.exists()


# ---------------------------------------------------------------------------------------- strategies

def test_strategies_crud(as_user, dataset, user):
    created = as_user.post(
        "/api/strategies",
        new_strategy(dataset, description="first", preset="quick", params={"env": {"window": 20}}),
        content_type="application/json",
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["owner"], body["dataset"], body["dataset_name"]) == ("ada", dataset.pk, dataset.name)
    assert body["config"]["env"]["window"] == 20 and body["config"]["trainer"]["epochs"] == 2
    url = f"/api/strategies/{body['id']}"

    assert as_user.get(url).json() == body
    assert [s["id"] for s in as_user.get("/api/strategies").json()["items"]] == [body["id"]]

    changes = {"name": "renamed", "params": {"trainer": {"epochs": 4}}}
    patched = as_user.patch(url, changes, content_type="application/json")
    assert patched.status_code == 200
    assert patched.json()["name"] == "renamed"
    assert patched.json()["config"]["trainer"]["epochs"] == 4
    assert patched.json()["config"]["env"]["window"] == 20

    deleted = as_user.delete(url)
    assert deleted.status_code == 204 and deleted.content == b""
    error_of(as_user.get(url), 404, "not_found")


def test_an_invalid_config_is_422_with_the_field_paths(as_user, dataset):
    response = as_user.post(
        "/api/strategies",
        new_strategy(dataset, params={"env": {"window": 0}}),
        content_type="application/json",
    )

    error = error_of(response, 422, "validation_error")
    assert locs(error) == [["env", "window"]]
    assert "env.window" in error["message"]
    assert not Strategy.objects.exists()


def test_an_agent_that_does_not_do_the_task_is_422_on_agent(as_user, dataset):
    response = as_user.post("/api/strategies", new_strategy(dataset, agent="dqn"), content_type="application/json")

    assert locs(error_of(response, 422, "validation_error")) == [["agent"]]


def test_a_malformed_body_is_422_with_the_body_field_paths(as_user, dataset):
    response = as_user.post(
        "/api/strategies", {"task": PM, "agent": "ppo", "dataset": "one", "preset": "heroic"},
        content_type="application/json",
    )

    error = error_of(response, 422, "validation_error")
    assert sorted(locs(error)) == [["dataset"], ["name"], ["preset"]]


def test_an_unknown_dataset_is_422_on_dataset(as_user, dataset):
    response = as_user.post(
        "/api/strategies", {**new_strategy(dataset), "dataset": dataset.pk + 99}, content_type="application/json"
    )

    assert locs(error_of(response, 422, "validation_error")) == [["dataset"]]


def test_unparsable_json_is_a_422_on_the_body(as_user):
    error = error_of(as_user.post("/api/strategies", "{not json", content_type="application/json"), 422,
                     "validation_error")

    assert locs(error) == [["body"]] and "not valid JSON" in error["fields"][0]["message"]


@pytest.mark.parametrize("body, kind", [("[null, null]", "a list"), ("[]", "a list"), ('"text"', "a string"),
                                        ("123", "int"), ("null", "null")])
def test_a_body_that_is_not_an_object_is_a_422_and_changes_nothing(as_user, strategy, body, kind):
    response = as_user.patch(f"/api/strategies/{strategy.pk}", body, content_type="application/json")

    error = error_of(response, 422, "validation_error")
    assert error["fields"] == [{"loc": ["body"], "message": NOT_AN_OBJECT.format(kind=kind)}]
    strategy.refresh_from_db()
    assert strategy.name == "ppo on synthetic"


@pytest.mark.parametrize("name, problem", [(r"\ud800", NOT_UNICODE), (r"a\u0000b", HAS_NUL)])
def test_text_that_cannot_be_stored_is_a_422_naming_the_field(as_user, dataset, name, problem):
    body = '{"name": "%s", "task": "portfolio_management", "agent": "ppo", "dataset": %d}' % (name, dataset.pk)

    error = error_of(as_user.post("/api/strategies", body, content_type="application/json"), 422, "validation_error")

    assert error["fields"] == [{"loc": ["name"], "message": problem}]
    assert not Strategy.objects.exists()


@pytest.mark.parametrize("params, loc", [
    ('{"split": {"ratios": [NaN, 0.5, 0.5]}}', ["params", "split", "ratios", 0]),
    ('{"env": {"initial_cash": Infinity}}', ["params", "env", "initial_cash"]),
    ('{"agent_params": {"learning_rate": -Infinity}}', ["params", "agent_params", "learning_rate"]),
])
def test_a_number_that_is_not_finite_is_a_422_naming_the_field(as_user, dataset, params, loc):
    body = '{"name": "n", "task": "portfolio_management", "agent": "ppo", "dataset": %d, "params": %s}' % (
        dataset.pk, params)

    error = error_of(as_user.post("/api/strategies", body, content_type="application/json"), 422, "validation_error")

    assert error["fields"] == [{"loc": loc, "message": NOT_FINITE}]
    assert not Strategy.objects.exists()


def test_a_body_over_the_upload_limit_is_a_413_in_the_error_shape(as_user, dataset, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = new_strategy(dataset) | {"description": "x" * 2000}

    response = as_user.post("/api/strategies", body, content_type="application/json")

    assert error_of(response, 413, "too_large")["message"] == TOO_LARGE.format(limit=1000)


@pytest.mark.parametrize("query", ["offset=99999999999999999999999", "limit=0", "limit=1001", "offset=-1"])
def test_a_page_parameter_out_of_range_is_a_422(as_user, query):
    error_of(as_user.get(f"/api/sessions?{query}"), 422, "validation_error")


@pytest.mark.parametrize("query", ["after=99999999999999999999999", "after=-1", "limit=0", "limit=1001"])
def test_a_metrics_cursor_out_of_range_is_a_422(as_user, make_session, query):
    session = make_session()

    error_of(as_user.get(f"/api/sessions/{session.pk}/metrics?{query}"), 422, "validation_error")


@pytest.mark.parametrize("path", ["/api/strategies/99999999999999999999999", "/api/sessions/99999999999999999999999",
                                  "/api/sessions/99999999999999999999999/metrics"])
def test_an_id_beyond_the_databases_integers_is_not_found(as_user, path):
    error_of(as_user.get(path), 404, "not_found")


def test_a_taken_name_is_409_on_name(as_user, dataset, make_strategy, user):
    make_strategy(user)

    response = as_user.post("/api/strategies", new_strategy(dataset), content_type="application/json")

    assert locs(error_of(response, 409, "conflict")) == [["name"]]


def test_someone_elses_strategy_is_404_to_read_change_and_delete(as_user, make_strategy, other_user):
    theirs = make_strategy(other_user)
    url = f"/api/strategies/{theirs.pk}"

    assert as_user.get("/api/strategies").json() == {"items": [], "count": 0}
    error_of(as_user.get(url), 404, "not_found")
    error_of(as_user.patch(url, {"name": "mine"}, content_type="application/json"), 404, "not_found")
    error_of(as_user.delete(url), 404, "not_found")
    assert Strategy.objects.get(pk=theirs.pk).name == "momentum"


def test_staff_see_only_their_own_strategies_a_config_is_its_owners(client, staff_user, user, make_strategy):
    mine, theirs = make_strategy(staff_user), make_strategy(user)
    client.force_login(staff_user)

    assert {s["id"] for s in client.get("/api/strategies").json()["items"]} == {mine.pk}
    error_of(client.get(f"/api/strategies/{theirs.pk}"), 404, "not_found")
    error_of(client.patch(f"/api/strategies/{theirs.pk}", {"name": "x"}, content_type="application/json"), 404,
             "not_found")
    error_of(client.delete(f"/api/strategies/{theirs.pk}"), 404, "not_found")
    assert Strategy.objects.filter(pk=theirs.pk, name="momentum").exists()


def test_superusers_may_change_anyones_strategy(client, superuser, user, make_strategy):
    strategy = make_strategy(user)
    client.force_login(superuser)

    response = client.patch(
        f"/api/strategies/{strategy.pk}", {"description": "moderated"}, content_type="application/json"
    )

    assert response.status_code == 200 and response.json()["description"] == "moderated"


def test_a_bad_strategy_id_is_a_validation_error(as_user):
    assert locs(error_of(as_user.get("/api/strategies/abc"), 422, "validation_error")) == [["strategy_id"]]


# ------------------------------------------------------------------------------------------ datasets

def test_datasets_are_listed_for_every_user(as_user, dataset):
    response = as_user.get("/api/datasets")

    assert response.status_code == 200
    [listed] = response.json()["items"]
    assert (listed["id"], listed["name"], listed["tickers"], listed["n_bars"]) == (
        dataset.pk, dataset.name, ["AAA", "BBB"], 504
    )
    assert "path" not in listed  # a server path is none of the client's business


@pytest.fixture
def import_dir(settings, btc_csv):
    """The server's import folder, holding btc_daily.csv."""
    settings.TRADEMASTER = {**settings.TRADEMASTER, "IMPORT_DIR": btc_csv.parent}
    return btc_csv.parent


def test_staff_import_a_dataset_from_the_import_folder(client, staff_user, import_dir):
    client.force_login(staff_user)

    response = client.post("/api/datasets/import", {"path": "btc_daily.csv", "name": "btc"},
                           content_type="application/json")

    assert response.status_code == 201
    assert response.json()["n_bars"] == 120 and response.json()["tickers"] == ["BTC"]
    assert Dataset.objects.get().name == "btc"


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../../../../etc/passwd", "/proc/self/environ",
                                  "/no/such/file.csv", "../btc_elsewhere.csv"])
def test_an_import_path_outside_the_import_folder_is_refused_alike_whether_it_exists_or_not(
    client, staff_user, import_dir, path
):
    (import_dir.parent / "btc_elsewhere.csv").write_text((import_dir / "btc_daily.csv").read_text())
    client.force_login(staff_user)

    response = client.post("/api/datasets/import", {"path": path, "name": "x"}, content_type="application/json")

    assert error_of(response, 422, "validation_error")["fields"] == [{"loc": ["path"], "message": OUTSIDE_IMPORT_DIR}]
    assert not Dataset.objects.exists()


def test_an_import_through_a_link_out_of_the_import_folder_is_refused(client, staff_user, import_dir):
    (import_dir / "passwd.csv").symlink_to("/etc/passwd")
    client.force_login(staff_user)

    response = client.post("/api/datasets/import", {"path": "passwd.csv", "name": "x"},
                           content_type="application/json")

    assert error_of(response, 422, "validation_error")["fields"][0]["message"] == OUTSIDE_IMPORT_DIR


def test_staff_upload_a_dataset(client, staff_user, btc_csv):
    client.force_login(staff_user)

    with btc_csv.open("rb") as file:
        response = client.post("/api/datasets/upload", {"name": "btc", "files": [file]})

    assert response.status_code == 201, response.content
    assert response.json()["n_bars"] == 120
    assert Dataset.objects.get().name == "btc"


def test_an_uploaded_bad_file_is_422_naming_the_file_by_its_name(client, staff_user, btc_csv):
    lines = btc_csv.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("2013-05-01 23:59:59", "the first of May")
    btc_csv.write_text("".join(lines))
    client.force_login(staff_user)

    with btc_csv.open("rb") as file:
        response = client.post("/api/datasets/upload", {"name": "btc", "files": [file]})

    assert error_of(response, 422, "invalid_data")["message"].startswith("btc_daily.csv line 4, column 'date': ")
    assert not Dataset.objects.exists()


def test_an_upload_that_is_not_csv_or_too_large_is_422_on_files(client, staff_user, btc_csv, tmp_path, settings):
    client.force_login(staff_user)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with text.open("rb") as file:
        not_csv = client.post("/api/datasets/upload", {"name": "n", "files": [file]})
    settings.TRADEMASTER = {**settings.TRADEMASTER, "UPLOAD_MAX_BYTES": 100}
    with btc_csv.open("rb") as file:
        too_large = client.post("/api/datasets/upload", {"name": "b", "files": [file]})

    assert error_of(not_csv, 422, "validation_error")["fields"] == [
        {"loc": ["files"], "message": UPLOAD_NOT_CSV.format(name="notes.txt")}
    ]
    assert locs(error_of(too_large, 422, "validation_error")) == [["files"]]
    assert not Dataset.objects.exists()


def test_importing_needs_staff(as_user, import_dir, btc_csv):
    response = as_user.post("/api/datasets/import", {"path": "btc_daily.csv", "name": "btc"},
                            content_type="application/json")
    with btc_csv.open("rb") as file:
        upload = as_user.post("/api/datasets/upload", {"name": "btc", "files": [file]})

    assert error_of(upload, 403, "forbidden")["message"] == IMPORT_NEEDS_STAFF
    assert error_of(response, 403, "forbidden")["message"] == IMPORT_NEEDS_STAFF
    assert not Dataset.objects.exists()


def test_a_bad_file_is_422_invalid_data_naming_line_and_column(client, staff_user, btc_csv, import_dir):
    lines = btc_csv.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("2013-05-01 23:59:59", "the first of May")
    btc_csv.write_text("".join(lines))
    client.force_login(staff_user)

    response = client.post("/api/datasets/import", {"path": "btc_daily.csv", "name": "btc"},
                           content_type="application/json")

    error = error_of(response, 422, "invalid_data")
    assert error["message"].startswith("btc_daily.csv line 4, column 'date': ")
    assert not Dataset.objects.exists()


def test_a_missing_import_path_is_422_on_path(client, staff_user, import_dir):
    client.force_login(staff_user)

    response = client.post("/api/datasets/import", {"path": "nope.csv", "name": "x"}, content_type="application/json")

    assert locs(error_of(response, 422, "validation_error")) == [["path"]]


# ---------------------------------------------------------------------------------------- config, docs

def test_the_config_schema_is_what_forms_are_built_from(as_user):
    response = as_user.get("/api/config/schema", {"task": PM, "agent": "ppo"})

    assert response.status_code == 200
    body = response.json()
    assert set(body["sections"]) == {"env", "agent_params", "trainer", "split"}
    assert body["sections"]["env"]["properties"]["window"]["default"] >= 1
    assert set(body["presets"]) == {"quick", "default", "thorough"}


def test_the_config_schema_of_a_bad_pair_or_missing_query_is_422(as_user):
    bad_pair = as_user.get("/api/config/schema", {"task": PM, "agent": "dqn"})
    missing = as_user.get("/api/config/schema", {"task": PM})

    assert locs(error_of(bad_pair, 422, "validation_error")) == [["agent"]]
    assert locs(error_of(missing, 422, "validation_error")) == [["agent"]]


def test_openapi_lists_the_endpoints_and_both_kinds_of_auth(client):
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    spec = response.json()
    assert {
        "/api/strategies": {"get", "post"},
        "/api/strategies/{strategy_id}": {"get", "patch", "delete"},
        "/api/datasets": {"get"},
        "/api/datasets/import": {"post"},
        "/api/datasets/upload": {"post"},
        "/api/config/schema": {"get"},
        "/api/strategies/{strategy_id}/sessions": {"post"},
        "/api/sessions": {"get"},
        "/api/sessions/{session_id}": {"get"},
        "/api/sessions/{session_id}/pause": {"post"},
        "/api/sessions/{session_id}/resume": {"post"},
        "/api/sessions/{session_id}/stop": {"post"},
        "/api/sessions/{session_id}/metrics": {"get"},
        "/api/sessions/{session_id}/report": {"get"},
        "/api/deployments": {"get", "post"},
        "/api/deployments/{deployment_id}": {"get"},
        "/api/deployments/{deployment_id}/pause": {"post"},
        "/api/deployments/{deployment_id}/resume": {"post"},
        "/api/deployments/{deployment_id}/stop": {"post"},
        "/api/deployments/{deployment_id}/orders": {"get"},
        "/api/deployments/{deployment_id}/fills": {"get"},
        "/api/deployments/{deployment_id}/equity": {"get"},
        "/api/deployments/{deployment_id}/events": {"get"},
        "/api/deployments/{deployment_id}/positions": {"get"},
        "/api/exchange-accounts": {"get", "post"},
        "/api/deployments/{deployment_id}/risk-limits": {"get", "put"},
        "/api/deployments/{deployment_id}/risk-decisions": {"get"},
        "/api/risk/limits/system": {"get", "put"},
        "/api/risk/limits/user": {"get", "put"},
        "/api/risk/limits/strategies/{strategy_id}": {"get", "put"},
        "/api/risk/kill-switch": {"get", "post"},
        "/api/risk/kill-switch/lift": {"post"},
    } == {path: set(operations) for path, operations in spec["paths"].items()}
    assert set(spec["components"]["securitySchemes"]) == {"BearerToken", "LoginSession"}
    assert client.get("/api/docs").status_code == 200


def test_an_unexpected_error_is_a_500_in_the_same_shape(as_user, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("strategies.selectors.strategy_list", broken)

    error = error_of(as_user.get("/api/strategies"), 500, "server_error")
    assert "a bug" not in error["message"]


def test_lists_come_in_pages_with_a_count(as_user, user, make_strategy):
    names = [f"s{i}" for i in range(5)]
    for name in names:
        make_strategy(user, name=name)

    first = as_user.get("/api/strategies", {"limit": 2}).json()
    rest = as_user.get("/api/strategies", {"limit": 2, "offset": 2}).json()["items"]
    rest += as_user.get("/api/strategies", {"limit": 2, "offset": 4}).json()["items"]

    assert first["count"] == 5 and len(first["items"]) == 2
    assert sorted(s["name"] for s in first["items"] + rest) == names  # every one once


@pytest.mark.parametrize(
    "query, field", [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"offset": -1}, "offset")]
)
def test_a_page_out_of_bounds_is_a_422_naming_the_parameter(as_user, query, field):
    error = error_of(as_user.get("/api/strategies", query), 422, "validation_error")

    assert [f["loc"][-1] for f in error["fields"]] == [field]


def test_a_report_names_its_dataset_and_shows_its_config_only_to_who_may_act(
    client, user, staff_user, bearer, make_session, strategy
):
    session = make_session("completed")
    report = {"metrics": {"sharpe": 1.0}, "config": {**strategy.config, "dataset": "/srv/var/data/7-x.csv"}}
    type(session).objects.filter(pk=session.pk).update(result_data={"report": report})
    client.force_login(staff_user)

    owners = client.get(f"/api/sessions/{session.pk}/report", headers=bearer(user)).json()
    operators = client.get(f"/api/sessions/{session.pk}/report").json()

    assert owners["config"]["dataset"] == strategy.dataset.name
    assert "/srv/var/data" not in str(owners)
    assert operators["metrics"] == {"sharpe": 1.0} and "config" not in operators


def test_a_failed_sessions_error_is_one_sentence_for_users_and_the_traceback_for_staff(
    client, user, staff_user, bearer, make_session
):
    session = make_session("failed")
    traceback = ('Traceback (most recent call last):\n  File "/srv/trademaster/engine/x.py", line 3\n'
                 "OSError: [Errno 28] No space left on device: '/srv/trademaster/var/runs/1/last.pt'\n")
    type(session).objects.filter(pk=session.pk).update(error=traceback)

    users = client.get(f"/api/sessions/{session.pk}", headers=bearer(user)).json()
    staffs = client.get(f"/api/sessions/{session.pk}", headers=bearer(staff_user)).json()

    assert users["error"] == "[Errno 28] No space left on device: 'last.pt'"
    assert staffs["error"] == traceback
