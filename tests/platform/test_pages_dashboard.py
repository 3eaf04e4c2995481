import json

import pytest
from django.urls import reverse

from engine.backtest.report import backtest_report, json_safe
from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.services import session_transition
from strategies.models import Strategy

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("dashboard")


@pytest.fixture
def ada(client, user):
    client.force_login(user)
    return client


def test_the_dashboard_is_the_home_page_and_needs_a_login(client):
    response = client.get("/")

    assert DASHBOARD == "/"
    assert response.status_code == 302 and response.url == f"{reverse('login')}?next=/"


def test_an_empty_dashboard_says_there_is_nothing_yet(ada):
    page = ada.get(DASHBOARD).content.decode()

    assert "None yet" in page and "Nothing running, queued or paused" in page and "No completed session yet" in page


def test_the_dashboard_shows_my_strategies_and_active_sessions_with_progress(ada, strategy, make_session):
    running = make_session(S.RUNNING, progress_epoch=7, progress_total=20)
    queued = make_session(S.QUEUED)
    failed = make_session(S.FAILED)

    page = ada.get(DASHBOARD).content.decode()

    assert strategy.name in page
    assert f"#{running.pk}<" in page and "7/20" in page and '<progress value="7" max="20"' in page
    assert f"#{queued.pk}<" in page
    assert f"#{failed.pk}<" not in page


def test_the_dashboard_shows_the_latest_results_against_the_benchmark(ada, make_session):
    report = json_safe(backtest_report(values=[100.0, 110.0, 99.0, 121.0],
                                       benchmark_values=[100.0, 105.0, 100.0, 100.0], periods_per_year=252))
    report = json.loads(json.dumps(report))  # as stored and read back
    done = make_session(S.COMPLETED, result_data={"report": report})
    no_report = make_session(S.COMPLETED)

    page = ada.get(DASHBOARD).content.decode()

    # 100 -> 121 is +21 %; the benchmark ends where it started. Both read from result_data.
    assert "21.00% / 0.00%" in page
    sharpe, benchmark_sharpe = report["metrics"]["sharpe"], report["benchmark_metrics"]["sharpe"]
    assert f"{sharpe:.2f} / {benchmark_sharpe:.2f}" in page  # ratios with two decimals
    assert reverse("sessions:report", args=[done.pk]) in page
    # A completed session without a report shows dashes, never a made-up number.
    assert reverse("sessions:detail", args=[no_report.pk]) in page
    assert "— / —" in page


def test_the_dashboard_shows_nothing_of_other_users(client, other_user, strategy, make_session):
    make_session(S.RUNNING, progress_epoch=7, progress_total=20)
    client.force_login(other_user)

    page = client.get(DASHBOARD).content.decode()

    assert strategy.name not in page and "7/20" not in page
    assert Strategy.objects.count() == 1 and StrategySession.objects.count() == 1


def test_the_dashboard_lists_running_sessions_before_queued_ones_and_newest_results_first(ada, make_session):
    running_old = make_session(S.RUNNING)
    queued = make_session(S.QUEUED)
    running_new = make_session(S.RUNNING)
    finished_last = make_session(S.RUNNING)  # created before finished_first, finished after it
    finished_first = make_session(S.COMPLETED)
    session_transition(session=finished_last, to=S.COMPLETED)

    page = ada.get(DASHBOARD).content.decode()

    active = [page.index(f'data-session-id="{s.pk}"') for s in (running_new, running_old, queued)]
    assert active == sorted(active)
    results = page.split("Latest results", 1)[1]
    assert results.index(f"#{finished_last.pk}<") < results.index(f"#{finished_first.pk}<")


def test_the_dashboard_names_its_result_columns_in_words(ada, make_session):
    page = ada.get(DASHBOARD).content.decode()

    results = page.split("Latest results", 1)[1].split("</thead>", 1)[0]
    for heading in ("Total return", "Sharpe ratio", "Max drawdown", "Alpha"):
        assert heading in results
    assert "total_return<" not in results and ">sharpe<" not in results


def test_the_dashboard_shows_paused_sessions_beside_the_running_and_queued(ada, make_session):
    paused = make_session(S.PAUSED, progress_epoch=3, progress_total=10)

    page = ada.get(DASHBOARD).content.decode()

    row = page.split(f'<tr data-session-id="{paused.pk}">', 1)[1].split("</tr>", 1)[0]
    assert '<span class="status status-paused">Paused</span>' in row and "3/10" in row


def test_the_dashboards_live_part_is_its_sessions_panels_alone(ada, make_session):
    running = make_session(S.RUNNING, progress_epoch=2, progress_total=4)

    part = ada.get(DASHBOARD, {"part": "live"}).content.decode()

    assert "<html" not in part and "My strategies" not in part
    assert 'id="active-panel"' in part and 'id="results-panel"' in part
    assert f'<tr data-session-id="{running.pk}">' in part and "2/4" in part


def test_the_dashboard_page_always_follows_its_sessions(ada):
    # An empty dashboard too: the session submitted next, anywhere, shows up without a reload.
    page = ada.get(DASHBOARD).content.decode()

    assert "js/dashboard_live.js" in page and 'data-part-url="/?part=live"' in page
