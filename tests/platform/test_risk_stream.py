"""The risk decisions on a deployment's stream (/ws/deployments/<id>/, the decisions feed): the stored
ones after the status, each new one once in id order, a resume from decisions_after with no gap and no
duplicate, and a bad cursor refused. Transactional, as the deployment stream's tests (the consumers read
in another thread)."""
import pytest

from sessions.consumers import CLOSE_BAD_REQUEST
from tests.platform.deployment_helpers import make_deployment
from tests.platform.risk_helpers import decide
from tests.platform.stream_helpers import WAIT, cookie_of, opened, run
from tests.platform.test_trading_stream import Viewer, db, refusal
from trading.feeds import DECISIONS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_poll")]


@pytest.fixture
def deployment(strategy):
    """ada's running deployment with two decisions: an approved buy, a refused sell."""
    deployment = make_deployment(strategy)
    decide(deployment, bar=0)
    decide(deployment, bar=0, symbol="A1", side="sell", code="max_open_orders",
           message="open orders would be 4, above the limit of 3", values={"limit": 3, "value": 4})
    return deployment


def ids(deployment) -> list[int]:
    return list(deployment.risk_decisions.order_by("pk").values_list("pk", flat=True))


def test_a_viewer_gets_the_stored_decisions_after_the_status_then_each_new_one_once(deployment, strategy, user):
    ada = cookie_of(user)
    other = make_deployment(strategy, name="another")

    async def scenario():
        communicator = await opened(f"/ws/deployments/{deployment.pk}/", ada)
        viewer, stored = Viewer(communicator), await db(lambda: ids(deployment))
        messages = []
        while len(viewer.decisions) < len(stored):
            message = await communicator.receive_json_from(timeout=WAIT)
            messages.append(message)
            viewer.take(message)
        assert viewer.first == "status" and viewer.decisions == stored
        refused = next(m for m in messages if m["type"] == "decision" and not m["approved"])
        assert (refused["code"], refused["values"], refused["side"], refused["bar_index"]) == (
            "max_open_orders", {"limit": 3, "value": 4}, "sell", 0)
        assert refused["created_at"].startswith("20")  # ISO 8601, as every feed's time

        # The next bar's decisions, and one of another deployment, which this viewer is not sent.
        await db(lambda: [decide(deployment, bar=1), decide(other, bar=1),
                          decide(deployment, bar=1, symbol="A1", code="price_band", message="too far")])
        expected = await db(lambda: ids(deployment))
        await viewer.until(lambda v: len(v.decisions) == len(expected))
        await viewer.communicator.receive_nothing(timeout=0.3)
        assert viewer.decisions == expected  # in id order, each once
        await communicator.disconnect()

    run(scenario)


def test_a_reconnect_after_the_last_decision_resumes_without_gaps_or_duplicates(deployment, user):
    ada = cookie_of(user)

    async def scenario():
        first = Viewer(await opened(f"/ws/deployments/{deployment.pk}/", ada))
        await first.until(lambda v: len(v.decisions) == 2)
        await first.communicator.disconnect()
        await db(lambda: [decide(deployment, bar=bar) for bar in (1, 2, 3)])

        second = Viewer(await opened(f"/ws/deployments/{deployment.pk}/?{first.cursor()}", ada))
        expected = await db(lambda: ids(deployment))
        await second.until(lambda v: v.status is not None and len(first.decisions + v.decisions) == len(expected))
        await second.nothing_more()
        assert first.decisions + second.decisions == expected
        await second.communicator.disconnect()

    run(scenario)


def test_a_bad_decisions_cursor_is_refused(deployment, user):
    ada = cookie_of(user)

    async def scenario():
        for value in ("-1", "x", "99999999999999999999"):
            error, code = await refusal(f"/ws/deployments/{deployment.pk}/?decisions_after={value}", ada)
            assert code == CLOSE_BAD_REQUEST and error["error"].startswith("decisions_after must be a row id")

    run(scenario)


def test_the_decisions_feed_reads_one_deployments_rows_and_its_latest_refusals(deployment, strategy):
    other = make_deployment(strategy, name="another")
    decide(other, bar=0, code="symbol_not_allowed")
    later = decide(deployment, bar=1, code="price_band")

    assert [row["id"] for row in DECISIONS.rows_after(owner_pk=deployment.pk, after=0)] == ids(deployment)
    refusals = DECISIONS.refused_newest(owner_pk=deployment.pk, limit=5)
    assert [row["code"] for row in refusals] == ["price_band", "max_open_orders"] and refusals[0]["id"] == later.pk
    assert DECISIONS.refused_newest(owner_pk=deployment.pk, limit=1) == refusals[:1]
