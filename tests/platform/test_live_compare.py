"""The comparison page: /sessions/compare/?ids=1,2,3 overlays several sessions' curves by epoch and
tables where each ended. Someone else's session is a 404, as on its own page."""
import json
import re

import pytest
from django.urls import reverse

from sessions.models import PerformanceMetric, StrategySession
from sessions.models import SessionStatus as S
from sessions.presenters import COMPARE_IDS_INVALID, COMPARE_IDS_REQUIRED
from strategies.models import Strategy

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(client, user):
    client.force_login(user)
    return client


def record(session, epoch: int, **metrics) -> None:
    PerformanceMetric.objects.bulk_create(
        PerformanceMetric(session=session, metric_type=name.replace("__", "/"), value=value, epoch=epoch)
        for name, value in metrics.items()
    )


def compare_url(*sessions) -> str:
    return reverse("sessions:compare") + "?ids=" + ",".join(str(s.pk) for s in sessions)


def chart_data(page: str) -> dict:
    found = re.search(r'<script id="compare-data" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))


@pytest.fixture
def foreign_session(other_user, dataset):
    strategy = Strategy.objects.create(
        owner=other_user, name="linus's secret", task=Strategy.Task.PORTFOLIO_MANAGEMENT, agent="dqn",
        dataset=dataset, config={},
    )
    return StrategySession.objects.create(strategy=strategy, session_type=StrategySession.SessionType.TRAINING)


def test_the_comparison_tables_each_sessions_last_epoch_and_test_report(ada, make_session):
    first = make_session(S.COMPLETED, result_data={"report": {"metrics": {"total_return": 0.25, "sharpe": 1.5}}})
    second = make_session(S.RUNNING)
    record(first, 1, eval__total_return=0.05, eval__sharpe=0.5, train__loss=0.9)
    record(first, 2, eval__total_return=0.1234, eval__sharpe=1.2345, train__loss=0.4321)
    record(second, 1, eval__total_return=-0.0321, eval__sharpe=-0.75, train__loss=1.111)

    response = ada.get(compare_url(first, second))

    page = response.content.decode()
    assert response.status_code == 200
    # One unit per column: returns in percent, Sharpe ratios with two decimals, losses as numbers.
    for number in ("12.34%", "1.23", "0.4321", "-3.21%", "-0.75", "1.1110"):
        assert f'<td class="num">{number}</td>' in page, number
    assert '<td class="num">25.00%</td>' in page and '<td class="num">1.50</td>' in page  # the test report
    assert "0.9000" not in page  # an earlier epoch is on the chart, not in the table
    assert page.index(f"#{first.pk}</a></td>") < page.index(f"#{second.pk}</a></td>")  # in the order asked


def test_the_comparison_names_each_column_in_words_under_the_data_it_is_of(ada, make_session):
    page = ada.get(compare_url(make_session(S.COMPLETED))).content.decode()

    head = page.split('<table id="compare-table"', 1)[1].split("</thead>", 1)[0]
    assert "Last epoch (validation split)" in head and "Report (test split)" in head
    for name, heading in (("eval/total_return", "Validation total return"), ("eval/sharpe", "Validation Sharpe ratio"),
                          ("train/loss", "Training loss"), ("total_return", "Total return"),
                          ("sharpe", "Sharpe ratio"), ("max_drawdown", "Max drawdown")):
        assert f'title="{name}">{heading}</th>' in head, name
    assert "(last)" not in head and "test total_return" not in head


def test_the_comparison_charts_get_every_epoch_of_every_session(ada, make_session):
    first, second = make_session(S.COMPLETED), make_session(S.RUNNING)
    record(first, 1, eval__total_return=0.05, eval__sharpe=None)
    record(first, 2, eval__total_return=0.10)
    record(second, 1, eval__total_return=-0.02, train__loss=1.5)

    data = chart_data(ada.get(compare_url(first, second)).content.decode())

    assert [s["id"] for s in data["sessions"]] == [first.pk, second.pk]
    assert data["series"]["eval/total_return"] == {str(first.pk): [[1, 0.05], [2, 0.10]], str(second.pk): [[1, -0.02]]}
    assert data["series"]["eval/sharpe"] == {str(first.pk): [[1, None]], str(second.pk): []}  # NaN is a gap
    assert data["series"]["train/loss"][str(second.pk)] == [[1, 1.5]]


def test_the_list_checkboxes_way_of_asking_works_too(ada, make_session):
    first, second = make_session(S.COMPLETED), make_session(S.COMPLETED)

    response = ada.get(reverse("sessions:compare"), {"ids": [first.pk, second.pk]})

    assert response.status_code == 200
    assert [s["id"] for s in chart_data(response.content.decode())["sessions"]] == [first.pk, second.pk]


def test_a_foreign_session_among_the_ids_is_a_404(ada, make_session, foreign_session):
    mine = make_session(S.COMPLETED)

    assert ada.get(compare_url(foreign_session)).status_code == 404
    response = ada.get(compare_url(mine, foreign_session))
    assert response.status_code == 404
    assert "linus" not in response.content.decode()


def test_a_missing_session_is_a_404_too(ada, make_session):
    mine = make_session(S.COMPLETED)

    assert ada.get(reverse("sessions:compare") + f"?ids={mine.pk},{mine.pk + 1000}").status_code == 404


def test_staff_compare_anyones_sessions(client, staff_user, make_session, foreign_session):
    client.force_login(staff_user)

    assert client.get(compare_url(make_session(S.COMPLETED), foreign_session)).status_code == 200


@pytest.mark.parametrize(("query", "error"), [
    ("", COMPARE_IDS_REQUIRED),
    ("?ids=", COMPARE_IDS_REQUIRED),
    ("?ids=1,x", COMPARE_IDS_INVALID.format(value="x")),
    ("?ids=-1", COMPARE_IDS_INVALID.format(value="-1")),
])
def test_ids_that_are_not_session_ids_are_a_bad_request(ada, query, error):
    response = ada.get(reverse("sessions:compare") + query)

    assert response.status_code == 400
    assert response.content.decode() == error


def test_anonymous_users_are_sent_to_log_in(client, make_session):
    response = client.get(compare_url(make_session(S.COMPLETED)))

    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_sessions_list_has_a_checkbox_per_session_for_the_comparison(ada, make_session):
    session = make_session(S.COMPLETED)

    page = ada.get(reverse("sessions:list")).content.decode()

    assert f'action="{reverse("sessions:compare")}" id="compare-form"' in page
    assert f'<input type="checkbox" name="ids" value="{session.pk}" form="compare-form"' in page
