"""The sessions API contract: status codes, the one error shape, the metric cursor and the report."""
import pytest
from django_q.models import OrmQ

from sessions.api import NO_REPORT
from sessions.models import PerformanceMetric, StrategySession
from sessions.models import SessionStatus as S
from sessions.services import ILLEGAL_TRANSITION, TOO_MANY_SESSIONS, session_start, session_transition
from tests.platform.test_api import error_of, locs

pytestmark = pytest.mark.django_db

SESSION_FIELDS = {
    "id", "strategy", "strategy_name", "owner", "session_type", "status", "priority", "source", "progress_epoch",
    "progress_total", "attempt", "device", "pause_requested", "cancel_requested", "error", "has_report", "task_id",
    "created_at", "started_at", "completed_at", "heartbeat_at",
}


@pytest.fixture
def api(client, user, bearer):
    """A client of `user` with a bearer token: post(url, body) and get(url) return responses."""

    class Api:
        headers = bearer(user)

        def get(self, url: str, **params):
            return client.get(url, params, headers=self.headers)

        def post(self, url: str, body: dict | None = None):
            return client.post(url, body or {}, content_type="application/json", headers=self.headers)

    return Api()


@pytest.fixture
def submitted(api, tiny_strategy) -> dict:
    response = api.post(f"/api/strategies/{tiny_strategy.pk}/sessions", {"priority": 2})
    assert response.status_code == 201, response.content
    return response.json()


def start(pk: int) -> StrategySession:
    return session_start(session=StrategySession.objects.get(pk=pk), process_id=1, host="worker")


def test_submitting_a_training_returns_the_queued_session(
    api, tiny_strategy, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/strategies/{tiny_strategy.pk}/sessions", {"priority": 2})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == SESSION_FIELDS
    assert (body["status"], body["session_type"], body["priority"], body["strategy"], body["owner"]) == (
        "queued", "training", 2, tiny_strategy.pk, "ada",
    )
    assert (body["attempt"], body["progress_total"], body["has_report"], body["source"]) == (0, 0, False, None)
    assert OrmQ.objects.count() == 1


def test_list_filters_by_status_and_get_returns_one(api, submitted, tiny_strategy):
    other = api.post(f"/api/strategies/{tiny_strategy.pk}/sessions").json()
    start(other["id"])

    assert [s["id"] for s in api.get("/api/sessions").json()["items"]] == [other["id"], submitted["id"]]
    assert [s["id"] for s in api.get("/api/sessions", status="running").json()["items"]] == [other["id"]]
    assert api.get(f"/api/sessions/{submitted['id']}").json() == submitted
    assert locs(error_of(api.get("/api/sessions", status="dancing"), 422, "validation_error")) == [["status"]]


def test_the_list_takes_the_same_queries_for_one_session_or_many(api, tiny_strategy, django_assert_num_queries):
    # Lists load a few columns of each strategy and owner (selectors.SUMMARY_RELATED): a field the
    # schema reads that they leave out would cost a query per row.
    StrategySession.objects.create(strategy=tiny_strategy, session_type="training")
    api.get("/api/sessions")  # the token's first use is written once: not part of what is counted
    with django_assert_num_queries(3):  # the token, the count, the page
        one = api.get("/api/sessions").json()
    StrategySession.objects.bulk_create(
        StrategySession(strategy=tiny_strategy, session_type="backtest", status=S.COMPLETED) for _ in range(4)
    )
    with django_assert_num_queries(3):
        many = api.get("/api/sessions").json()

    assert (one["count"], many["count"]) == (1, 5)
    assert {s["owner"] for s in many["items"]} == {"ada"}
    assert {s["strategy_name"] for s in many["items"]} == {tiny_strategy.name}


def test_pause_resume_and_stop_through_the_api(api, submitted):
    url = f"/api/sessions/{submitted['id']}"
    session = start(submitted["id"])

    paused = api.post(f"{url}/pause")
    assert paused.status_code == 200 and paused.json()["pause_requested"] is True
    session_transition(session=session, to=S.PAUSED)  # what the worker does at the epoch's end
    assert api.post(f"{url}/resume").json()["status"] == "queued"
    stopped = api.post(f"{url}/stop")
    assert (stopped.status_code, stopped.json()["status"]) == (200, "cancelled")


def test_an_action_the_status_does_not_allow_is_409(api, submitted):
    url = f"/api/sessions/{submitted['id']}"

    error = error_of(api.post(f"{url}/pause"), 409, "conflict")

    assert error["message"] == ILLEGAL_TRANSITION.format(pk=submitted["id"], current="queued", to="paused")
    api.post(f"{url}/stop")
    error_of(api.post(f"{url}/stop"), 409, "conflict")
    resume = error_of(api.post(f"{url}/resume"), 409, "conflict")
    assert resume["message"] == ILLEGAL_TRANSITION.format(pk=submitted["id"], current="cancelled", to="queued")


def test_the_active_session_limit_is_409(api, tiny_strategy, settings):
    settings.TRADEMASTER = {**settings.TRADEMASTER, "MAX_SESSIONS_PER_USER": 1}
    url = f"/api/strategies/{tiny_strategy.pk}/sessions"
    api.post(url)

    error = error_of(api.post(url), 409, "conflict")

    assert error["message"] == TOO_MANY_SESSIONS.format(owner="ada", count=1, limit=1)


def test_bad_submissions_are_422_on_their_field(api, tiny_strategy, submitted):
    url = f"/api/strategies/{tiny_strategy.pk}/sessions"

    assert locs(error_of(api.post(url, {"session_type": "live"}), 422, "validation_error")) == [["session_type"]]
    assert locs(error_of(api.post(url, {"priority": 1000}), 422, "validation_error")) == [["priority"]]
    not_completed = api.post(url, {"session_type": "backtest", "source": submitted["id"]})
    assert locs(error_of(not_completed, 422, "validation_error")) == [["source"]]
    unknown = api.post(url, {"session_type": "backtest", "source": submitted["id"] + 99})
    assert locs(error_of(unknown, 422, "validation_error")) == [["source"]]


def test_someone_elses_sessions_are_404_and_their_strategies_too(
    client, submitted, tiny_strategy, other_user, bearer
):
    headers = bearer(other_user)
    url = f"/api/sessions/{submitted['id']}"

    assert client.get("/api/sessions", headers=headers).json() == {"items": [], "count": 0}
    for response in (
        client.get(url, headers=headers),
        client.get(f"{url}/metrics", headers=headers),
        client.get(f"{url}/report", headers=headers),
        client.post(f"{url}/stop", headers=headers),
        client.post(f"/api/strategies/{tiny_strategy.pk}/sessions", {}, content_type="application/json",
                    headers=headers),
    ):
        error_of(response, 404, "not_found")
    assert StrategySession.objects.get(pk=submitted["id"]).status == S.QUEUED


def test_staff_see_every_session_but_may_not_act_on_it(client, submitted, staff_user, bearer):
    headers = bearer(staff_user)
    url = f"/api/sessions/{submitted['id']}"

    assert client.get(url, headers=headers).json()["owner"] == "ada"
    error_of(client.post(f"{url}/stop", headers=headers), 403, "forbidden")


def test_metrics_page_by_id_cursor(api, submitted):
    session = StrategySession.objects.get(pk=submitted["id"])
    rows = PerformanceMetric.objects.bulk_create(
        PerformanceMetric(session=session, metric_type="train/loss", value=1.0 / epoch, epoch=epoch)
        for epoch in range(1, 6)
    )
    PerformanceMetric.objects.filter(pk=rows[4].pk).update(value=None)  # a NaN, as the worker stores it
    url = f"/api/sessions/{submitted['id']}/metrics"

    first = api.get(url, limit=2).json()
    assert [m["epoch"] for m in first["items"]] == [1, 2] and first["has_more"] is True
    assert set(first["items"][0]) == {"id", "metric_type", "value", "epoch", "timestamp"}
    rest = api.get(url, after=first["next"], limit=10).json()
    assert [m["epoch"] for m in rest["items"]] == [3, 4, 5] and rest["has_more"] is False
    assert rest["items"][-1]["value"] is None
    empty = api.get(url, after=rest["next"]).json()
    assert empty == {"items": [], "next": rest["next"], "has_more": False}  # poll again from the same cursor


def test_the_report_is_409_until_there_is_one(api, submitted):
    url = f"/api/sessions/{submitted['id']}/report"
    error = error_of(api.get(url), 409, "conflict")
    assert error["message"] == NO_REPORT.format(pk=submitted["id"], status="queued")

    session = start(submitted["id"])
    report = {"metrics": {"sharpe": 1.5}, "benchmark_metrics": {"sharpe": 0.5}, "equity_curve": []}
    session_transition(session=session, to=S.COMPLETED, result_data={"best_epoch": 2, "report": report})

    assert api.get(url).json() == report
    assert api.get(f"/api/sessions/{submitted['id']}").json()["has_report"] is True
