import html
import json

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from engine.backtest.report import backtest_report, json_safe
from sessions.models import PerformanceMetric, ResourceUsage, StrategySession
from sessions.models import SessionStatus as S
from sessions.reasons import NO_REASON
from sessions.report_format import metric, metric_label
from sessions.selectors import BEST_CHECKPOINT
from sessions.views import METRICS_PER_PAGE, PAUSE_WITHDRAWN, STOP_REQUESTED, STOPPED, TRADES_PER_PAGE

pytestmark = pytest.mark.django_db

DATES = ["2024-01-01", "2024-01-02", "2024-01-03"]


def known_report(**extra) -> dict:
    """A real engine report over a curve a person can check: the strategy gains 10 a day, the benchmark
    loses 10, so on one scale (80..120) both start in the middle."""
    report = backtest_report(values=[100.0, 110.0, 120.0], benchmark_values=[100.0, 90.0, 80.0],
                             periods_per_year=252, dates=DATES, **extra)
    return json.loads(json.dumps(json_safe(report) | {"benchmark": "buy_and_hold", "split": "test"}))


@pytest.fixture
def ada(client, user):
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --------------------------------------------------------------------------------------------- access

@pytest.mark.parametrize("name", ["sessions:detail", "sessions:report"])
def test_anonymous_users_are_sent_to_log_in(client, make_session, name):
    url = reverse(name, args=[make_session().pk])

    response = client.get(url)

    assert response.status_code == 302 and response.url == f"{reverse('login')}?next={url}"


def test_the_session_list_needs_a_login(client):
    response = client.get(reverse("sessions:list"))

    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.parametrize("name", ["sessions:pause", "sessions:resume", "sessions:stop", "sessions:backtest"])
def test_anonymous_actions_change_nothing(client, make_session, name):
    session = make_session(S.RUNNING)

    response = client.post(reverse(name, args=[session.pk]))

    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    session.refresh_from_db()
    assert session.status == S.RUNNING and not session.pause_requested and not session.cancel_requested
    assert StrategySession.objects.count() == 1


@pytest.mark.parametrize("name", ["sessions:detail", "sessions:report"])
def test_someone_elses_session_is_not_found(client, other_user, make_session, name):
    client.force_login(other_user)

    assert client.get(reverse(name, args=[make_session().pk])).status_code == 404


@pytest.mark.parametrize("name", ["sessions:pause", "sessions:resume", "sessions:stop", "sessions:backtest"])
def test_someone_elses_session_cannot_be_acted_on(client, other_user, make_session, name):
    session = make_session(S.RUNNING)
    client.force_login(other_user)

    response = client.post(reverse(name, args=[session.pk]))

    assert response.status_code == 404
    session.refresh_from_db()
    assert session.status == S.RUNNING and not session.pause_requested and not session.cancel_requested


@pytest.mark.parametrize("name", ["sessions:pause", "sessions:resume", "sessions:stop", "sessions:backtest"])
def test_actions_refuse_get(ada, make_session, name):
    assert ada.get(reverse(name, args=[make_session(S.RUNNING).pk])).status_code == 405


def test_actions_need_the_csrf_token(user, make_session):
    session = make_session(S.RUNNING)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    response = browser.post(reverse("sessions:stop", args=[session.pk]))

    assert response.status_code == 403
    session.refresh_from_db()
    assert not session.cancel_requested


def test_staff_see_someone_elses_session_but_cannot_act_on_it(client, staff_user, make_session):
    session = make_session(S.RUNNING)
    client.force_login(staff_user)

    assert client.get(reverse("sessions:detail", args=[session.pk])).status_code == 200
    assert client.post(reverse("sessions:stop", args=[session.pk])).status_code == 403
    session.refresh_from_db()
    assert not session.cancel_requested


def test_a_superuser_sees_everyones_sessions(client, superuser, make_session):
    session = make_session(S.RUNNING)
    client.force_login(superuser)

    assert f"#{session.pk}" in client.get(reverse("sessions:list")).content.decode()
    assert client.get(reverse("sessions:detail", args=[session.pk])).status_code == 200


# ------------------------------------------------------------------------------------------------ list

def test_the_list_filters_by_status(ada, make_session):
    running = make_session(S.RUNNING, progress_epoch=4, progress_total=9)
    failed = make_session(S.FAILED)

    everything = ada.get(reverse("sessions:list")).content.decode()
    only_running = ada.get(reverse("sessions:list"), {"status": "running"}).content.decode()

    assert f"#{running.pk}<" in everything and f"#{failed.pk}<" in everything
    assert f"#{running.pk}<" in only_running and f"#{failed.pk}<" not in only_running
    assert "4/9" in only_running


def test_an_unknown_status_filter_shows_everything(ada, make_session):
    session = make_session(S.FAILED)

    response = ada.get(reverse("sessions:list"), {"status": "nonsense"})

    assert f"#{session.pk}<" in response.content.decode()


# ---------------------------------------------------------------------------------------------- detail

def test_the_detail_shows_progress_metrics_resources_and_error(ada, make_session):
    session = make_session(S.RUNNING, progress_epoch=3, progress_total=10, device="cpu")
    PerformanceMetric.objects.create(session=session, metric_type="train/loss", value=0.4321, epoch=3)
    PerformanceMetric.objects.create(session=session, metric_type="eval/sharpe", value=None, epoch=3)
    ResourceUsage.objects.create(session=session, cpu_percent=87.5, memory_mb=1234.5, disk_io_mb=2.25)
    StrategySession.objects.filter(pk=session.pk).update(error="worker lost; retrying")

    page = ada.get(reverse("sessions:detail", args=[session.pk])).content.decode()

    assert '<progress value="3" max="10"' in page and "3/10" in page
    assert "train/loss" in page and "0.4321" in page
    assert "eval/sharpe" in page  # its NaN (stored as NULL) shows as "—"
    assert "87.5" in page and "1234.5" in page
    assert "worker lost; retrying" in page
    for action in ("pause", "stop"):
        assert reverse(f"sessions:{action}", args=[session.pk]) in page
    assert reverse("sessions:resume", args=[session.pk]) not in page


def test_the_metrics_open_on_the_latest_epochs_and_page_by_id(ada, make_session):
    session = make_session(S.RUNNING)
    PerformanceMetric.objects.bulk_create(
        PerformanceMetric(session=session, metric_type=f"eval/m{epoch:03d}", value=1.0, epoch=epoch)
        for epoch in range(1, METRICS_PER_PAGE + 51)
    )
    url = reverse("sessions:detail", args=[session.pk])

    latest = ada.get(url).content.decode()
    first = ada.get(url, {"after": 0}).content.decode()
    first_ids = PerformanceMetric.objects.order_by("pk").values_list("pk", flat=True)
    second = ada.get(url, {"after": first_ids[METRICS_PER_PAGE - 1]}).content.decode()

    assert "eval/m150" in latest and "eval/m051" in latest and "eval/m050" not in latest
    assert "eval/m001" in first and "eval/m100" in first and "eval/m101" not in first
    assert "eval/m101" in second and "eval/m150" in second and "eval/m100" not in second


def test_the_detail_shows_the_last_50_lines_of_the_log(ada, make_session, tmp_path):
    log = tmp_path / "train.log"
    log.write_text("".join(f"line {n:03d}\n" for n in range(1, 61)))
    session = make_session(S.RUNNING, log_path=str(log))

    page = ada.get(reverse("sessions:detail", args=[session.pk])).content.decode()

    assert "line 011" in page and "line 060" in page
    assert "line 010" not in page


def test_a_missing_log_file_is_said_not_an_error(ada, make_session, tmp_path):
    session = make_session(S.QUEUED, log_path=str(tmp_path / "not-yet.log"))

    response = ada.get(reverse("sessions:detail", args=[session.pk]))

    assert response.status_code == 200 and "No log file" in response.content.decode()


# --------------------------------------------------------------------------------------------- actions

def test_pause_asks_a_running_session_to_pause(ada, make_session):
    session = make_session(S.RUNNING)

    response = ada.post(reverse("sessions:pause", args=[session.pk]))

    assert response.status_code == 302 and response.url == reverse("sessions:detail", args=[session.pk])
    session.refresh_from_db()
    assert session.pause_requested and session.status == S.RUNNING
    page = ada.get(response.url).content.decode()
    assert "pause requested" in page
    assert reverse("sessions:resume", args=[session.pk]) in page  # to withdraw it


def test_resume_queues_a_paused_session_again(ada, make_session):
    session = make_session(S.PAUSED)

    ada.post(reverse("sessions:resume", args=[session.pk]))

    session.refresh_from_db()
    assert session.status == S.QUEUED


def test_resume_withdraws_a_pause_not_reached_yet(ada, make_session):
    session = make_session(S.RUNNING)
    ada.post(reverse("sessions:pause", args=[session.pk]))

    response = ada.post(reverse("sessions:resume", args=[session.pk]))

    session.refresh_from_db()
    assert session.status == S.RUNNING and not session.pause_requested
    assert messages_of(response)[-1] == PAUSE_WITHDRAWN.format(pk=session.pk)


def test_stop_asks_a_running_session_to_stop(ada, make_session):
    session = make_session(S.RUNNING)

    response = ada.post(reverse("sessions:stop", args=[session.pk]))

    session.refresh_from_db()
    assert session.cancel_requested and session.status == S.RUNNING
    assert messages_of(response) == [STOP_REQUESTED.format(pk=session.pk)]


def test_stop_cancels_a_queued_session_at_once(ada, make_session):
    session = make_session(S.QUEUED)

    response = ada.post(reverse("sessions:stop", args=[session.pk]))

    session.refresh_from_db()
    assert session.status == S.CANCELLED
    assert messages_of(response) == [STOPPED.format(pk=session.pk)]


def test_an_action_the_status_does_not_allow_comes_back_as_a_message(ada, make_session):
    session = make_session(S.COMPLETED)

    response = ada.post(reverse("sessions:resume", args=[session.pk]))

    assert response.status_code == 302
    assert messages_of(response) and "cannot" in messages_of(response)[0]
    session.refresh_from_db()
    assert session.status == S.COMPLETED


@pytest.fixture
def runs_dir(settings, tmp_path):
    directory = tmp_path / "runs"
    settings.TRADEMASTER = {**settings.TRADEMASTER, "RUNS_DIR": directory}
    return directory


def test_backtest_of_a_completed_training_submits_a_backtest_session(ada, make_session, strategy, runs_dir):
    training = make_session(S.COMPLETED)
    best = runs_dir / str(training.pk) / BEST_CHECKPOINT
    best.parent.mkdir(parents=True)
    best.write_bytes(b"weights")

    response = ada.post(reverse("sessions:backtest", args=[training.pk]))

    backtest = StrategySession.objects.get(session_type="backtest")
    assert response.status_code == 302 and response.url == reverse("sessions:detail", args=[backtest.pk])
    assert backtest.strategy == strategy and backtest.source == training
    assert backtest.status == S.QUEUED and backtest.checkpoint_path == str(best)


def test_a_backtest_the_service_refuses_comes_back_as_a_message(ada, make_session, runs_dir):
    training = make_session(S.COMPLETED)  # no checkpoint on disk

    response = ada.post(reverse("sessions:backtest", args=[training.pk]))

    assert response.status_code == 302 and response.url == reverse("sessions:detail", args=[training.pk])
    assert "has no best checkpoint" in messages_of(response)[0]
    assert not StrategySession.objects.filter(session_type="backtest").exists()


def test_the_backtest_button_is_on_completed_trainings_only(ada, make_session):
    completed, running = make_session(S.COMPLETED), make_session(S.RUNNING)

    assert reverse("sessions:backtest", args=[completed.pk]) in ada.get(
        reverse("sessions:detail", args=[completed.pk])).content.decode()
    assert reverse("sessions:backtest", args=[running.pk]) not in ada.get(
        reverse("sessions:detail", args=[running.pk])).content.decode()


# ---------------------------------------------------------------------------------------------- report

def test_the_report_shows_every_metric_beside_the_benchmarks(ada, make_session):
    report = known_report()
    session = make_session(S.COMPLETED, result_data={"report": report})

    response = ada.get(reverse("sessions:report", args=[session.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    for name, value in report["metrics"].items():
        row = f'<th scope="row" title="{name}">{metric_label(name)}</th><td class="num">{metric(value, name)}</td>'
        assert row in page, name
        assert f'<td class="num">{metric(report["benchmark_metrics"].get(name), name)}</td>' in page
    assert metric(report["metrics"]["total_return"], "total_return") == "20.00%"
    assert metric(report["benchmark_metrics"]["total_return"], "total_return") == "-20.00%"
    assert metric(report["beta"], "beta") in page and "Buy and hold" in page


def test_the_report_draws_the_equity_and_drawdown_curves_as_inline_svg(ada, make_session):
    session = make_session(S.COMPLETED, result_data={"report": known_report()})

    page = ada.get(reverse("sessions:report", args=[session.pk])).content.decode()

    # 800 x 220 plot, y from 80 (bottom) to 120 (top): see sessions.charts.
    assert '<path class="strategy" d="M0,110 L400,55 L800,0"' in page
    assert '<path class="benchmark" d="M0,110 L400,165 L800,220"' in page
    assert page.count("<svg") == 2
    assert "2024-01-01" in page and "2024-01-03" in page
    # The SVG stays as the no-JavaScript fallback; the interactive charts use the vendored library.
    assert "/static/vendor/uplot/uPlot.iife.min.js" in page


def test_the_trades_table_is_paged(ada, make_session):
    trades = [{"date": DATES[1], "tic": f"T{n:03d}", "side": "buy", "value": 1000.0 + n}
              for n in range(TRADES_PER_PAGE + 5)]
    session = make_session(S.COMPLETED, result_data={"report": known_report(trades=trades)})
    url = reverse("sessions:report", args=[session.pk])

    first = ada.get(url).content.decode()
    second = ada.get(url, {"page": 2}).content.decode()

    assert f"Trades ({TRADES_PER_PAGE + 5})" in first
    assert "T000" in first and f"T{TRADES_PER_PAGE - 1:03d}" in first and f"T{TRADES_PER_PAGE:03d}" not in first
    assert f"T{TRADES_PER_PAGE:03d}" in second and "T000" not in second
    assert "1,000.00" in first  # the trade's value


def test_a_session_without_a_report_says_so(ada, make_session):
    session = make_session(S.RUNNING)

    response = ada.get(reverse("sessions:report", args=[session.pk]))

    assert response.status_code == 200 and "no report yet" in response.content.decode()


@pytest.mark.parametrize("rows", [0, 3, METRICS_PER_PAGE, METRICS_PER_PAGE + 1, 2 * METRICS_PER_PAGE + 7])
def test_the_last_page_is_what_paging_from_its_cursor_gives(make_session, rows):
    from sessions.selectors import metric_last_page, metric_page

    session = make_session(S.RUNNING)
    PerformanceMetric.objects.bulk_create(
        PerformanceMetric(session=session, metric_type="train/loss", value=1.0, epoch=epoch) for epoch in range(rows)
    )

    page, cursor = metric_last_page(session=session, limit=METRICS_PER_PAGE)

    assert page == metric_page(session=session, after=cursor, limit=METRICS_PER_PAGE)
    assert len(page) == min(rows, METRICS_PER_PAGE)
    assert [m.pk for m in page] == sorted(m.pk for m in page)
    earlier = PerformanceMetric.objects.filter(session=session, pk__lt=page[0].pk).order_by("-pk") if page else None
    before = earlier.first() if page else None
    assert cursor == (before.pk if before else 0)  # the row just before the page, or 0 when there is none


def test_the_report_names_its_metrics_in_words_with_their_units(ada, make_session):
    session = make_session(S.COMPLETED, result_data={"report": known_report(fees=[1234.5, 0.25], turnover=[0.5, 0.0])})

    page = ada.get(reverse("sessions:report", args=[session.pk])).content.decode()

    # 100 -> 110 -> 120 never draws down; the benchmark's 100 -> 90 -> 80 is below its peak for 2 bars.
    assert '<th scope="row" title="max_drawdown_duration">Max drawdown duration (bars)</th>' in page
    assert '<td class="num">0</td><td class="num">2</td>' in page  # counts without decimals
    assert '>Bars in the period</th><td class="num">2</td><td class="num">2</td>' in page
    assert '>Fees paid (account currency)</th><td class="num">1,234.75</td>' in page  # money with two
    assert '>Sharpe ratio (annualised)</th>' in page and ">sharpe<" not in page


def test_the_report_header_gives_the_test_periods_dates_and_the_benchmark_in_words(ada, make_session):
    session = make_session(S.COMPLETED, result_data={"report": known_report()})

    page = ada.get(reverse("sessions:report", args=[session.pk])).content.decode()

    h1 = page.split("<h1>", 1)[1].split("</h1>", 1)[0]
    assert "test period 2024-01-01 to 2024-01-03 (2 bars)" in h1
    assert "<dd>Buy and hold (the market bought at the first bar and held)</dd>" in page
    assert "<dd>buy_and_hold</dd>" not in page


def test_the_trades_print_prices_with_the_instruments_precision_and_money_with_two_decimals(ada, make_session):
    # Prices as the readers keep them: TradeMaster's float32 quotes of a 2-decimal instrument, widened.
    trades = [
        {"date": DATES[0], "tic": "BTC", "side": "buy", "shares": 2.5, "price": 144.5399932861328, "fee": 0.3613499},
        {"date": DATES[1], "tic": "BTC", "side": "sell", "shares": 2.5, "price": 139.0, "fee": 0.3475},
    ]
    session = make_session(S.COMPLETED, result_data={"report": known_report(trades=trades)})

    page = ada.get(reverse("sessions:report", args=[session.pk])).content.decode()

    table = page.split('<table id="trades">', 1)[1].split("</table>", 1)[0]
    assert ">Date<" in table and ">Asset<" in table and ">Shares<" in table and ">Price<" in table and ">Fee<" in table
    assert '<td class="num">144.54</td>' in table and '<td class="num">139.00</td>' in table
    assert '<td class="num">0.36</td>' in table and '<td class="num">0.35</td>' in table
    assert '<td class="num">2.5</td>' in table  # the shares' own precision
    assert "144.5399" not in table


def test_an_execution_report_lists_its_orders_with_counts_prices_and_basis_points(ada, make_session):
    orders = [{"bar": 100, "arrival_price": 101.25, "average_price": 101.375, "executed": 1000.0, "remaining": 0.0,
               "shortfall": 125.0, "shortfall_bps": 12.345679, "reward": -0.0012, "date": DATES[0]}]
    report = {"task": "order_execution", "benchmark": "twap", "split": "test", "orders": orders,
              "metrics": {"orders": 1.0, "shortfall_bps": 12.345679}, "benchmark_metrics": {"orders": 1.0}}
    session = make_session(S.COMPLETED, result_data={"report": report})

    page = ada.get(reverse("sessions:report", args=[session.pk])).content.decode()

    assert "Orders (1)" in page and "TWAP (each order in equal slices over its horizon)" in page
    assert "test period 2024-01-01 to 2024-01-01 (1 orders)" in page
    table = page.split('<table id="trades">', 1)[1].split("</table>", 1)[0]
    assert '<td class="num">100</td>' in table  # the bar: a count
    assert '<td class="num">101.250</td><td class="num">101.375</td>' in table  # one precision per instrument
    assert '<td class="num">1,000</td><td class="num">0</td>' in table  # whole shares
    assert '<td class="num">125.00</td><td class="num">12.3</td>' in table
    assert '>Implementation shortfall (mean, bps)</th><td class="num">12.3</td>' in page


# ------------------------------------------------------------------------------------ failures, actions

TRACEBACK = """Traceback (most recent call last):
  File "/srv/trademaster/sessions/runner.py", line 57, in execute
    _backtest(session)
  File "/srv/trademaster/engine/backtest/run.py", line 27, in backtest
    raise FileNotFoundError(CHECKPOINT_MISSING.format(path=checkpoint))
FileNotFoundError: the checkpoint to backtest is missing: /srv/trademaster/var/runs/12/best.pt
"""


def test_a_failed_session_says_why_in_one_sentence_without_a_traceback_or_a_path(ada, make_session):
    session = make_session(S.FAILED)
    StrategySession.objects.filter(pk=session.pk).update(error=TRACEBACK)

    page = ada.get(reverse("sessions:detail", args=[session.pk])).content.decode()

    assert "Why it failed" in page
    assert '<p class="error" id="failure-reason">the checkpoint to backtest is missing: best.pt</p>' in page
    assert "Traceback" not in page and "/srv/" not in page and "runner.py" not in page


def test_staff_see_the_traceback_of_a_failed_session(client, staff_user, make_session):
    session = make_session(S.FAILED)
    StrategySession.objects.filter(pk=session.pk).update(error=TRACEBACK)
    client.force_login(staff_user)

    page = html.unescape(client.get(reverse("sessions:detail", args=[session.pk])).content.decode())

    assert "the checkpoint to backtest is missing: best.pt" in page
    assert "Full error (staff only)" in page and 'File "/srv/trademaster/sessions/runner.py", line 57' in page


def test_a_failure_without_a_message_still_says_something(ada, make_session):
    session = make_session(S.FAILED)
    StrategySession.objects.filter(pk=session.pk).update(error="\n  \n")

    page = ada.get(reverse("sessions:detail", args=[session.pk])).content.decode()

    assert NO_REASON in page


def test_the_log_file_path_is_for_staff_only(ada, staff_user, make_session, tmp_path):
    session = make_session(S.QUEUED, log_path=str(tmp_path / "not-yet.log"))

    mine = ada.get(reverse("sessions:detail", args=[session.pk])).content.decode()
    ada.force_login(staff_user)
    staff = ada.get(reverse("sessions:detail", args=[session.pk])).content.decode()

    assert "No log file." in mine and str(tmp_path) not in mine
    assert f"No log file at {tmp_path / 'not-yet.log'}." in staff


def test_staff_who_do_not_own_a_session_are_offered_no_action_on_it(client, staff_user, make_session):
    running, completed = make_session(S.RUNNING), make_session(S.COMPLETED)
    client.force_login(staff_user)

    pages = [client.get(reverse("sessions:detail", args=[s.pk])).content.decode() for s in (running, completed)]
    listed = client.get(reverse("sessions:list")).content.decode()

    for action in ("pause", "resume", "stop", "backtest"):
        for session, page in zip((running, completed), pages):
            assert reverse(f"sessions:{action}", args=[session.pk]) not in page
            assert reverse(f"sessions:{action}", args=[session.pk]) not in listed


def test_a_superuser_is_offered_the_actions_on_anyones_session(client, superuser, make_session):
    session = make_session(S.RUNNING)
    client.force_login(superuser)

    page = client.get(reverse("sessions:detail", args=[session.pk])).content.decode()

    assert reverse("sessions:pause", args=[session.pk]) in page and reverse("sessions:stop", args=[session.pk]) in page


def test_after_a_stop_request_neither_pause_nor_stop_is_offered_again(ada, make_session):
    session = make_session(S.RUNNING)

    ada.post(reverse("sessions:stop", args=[session.pk]))
    page = ada.get(reverse("sessions:detail", args=[session.pk])).content.decode()

    assert "(stop requested)" in page
    for action in ("pause", "resume", "stop"):
        assert reverse(f"sessions:{action}", args=[session.pk]) not in page


def test_the_live_part_is_the_pages_own_live_part_alone(ada, make_session):
    session = make_session(S.COMPLETED, attempt=2, device="cuda:0")
    PerformanceMetric.objects.create(session=session, metric_type="eval/total_return", value=0.1234, epoch=3)
    url = reverse("sessions:detail", args=[session.pk])

    page = ada.get(url).content.decode()
    part = ada.get(url, {"part": "live"}).content.decode()

    assert "<html" not in part and "<h1>" not in part
    for element in ('id="actions"', 'id="facts"', 'id="failure"', 'id="tables"', 'id="log"'):
        assert element in part and element in page
    assert '<dd id="fact-attempt">2</dd>' in part and '<dd id="fact-device">cuda:0</dd>' in part
    assert ">Validation total return</td><td class=\"num\">12.34%</td>" in part
    assert reverse("sessions:backtest", args=[session.pk]) in part
    assert f'data-part-url="{url}?part=live"' in page


def test_a_page_of_older_epochs_keeps_its_page_when_it_refreshes(ada, make_session):
    session = make_session(S.RUNNING)
    url = reverse("sessions:detail", args=[session.pk])

    page = ada.get(url, {"after": 0}).content.decode()

    assert f'data-part-url="{url}?part=live&amp;after=0"' in page


def test_a_backtest_session_page_has_no_training_curves(ada, strategy):
    backtest = StrategySession.objects.create(strategy=strategy, session_type=StrategySession.SessionType.BACKTEST)
    training = StrategySession.objects.create(strategy=strategy, session_type=StrategySession.SessionType.TRAINING)

    backtest_page = ada.get(reverse("sessions:detail", args=[backtest.pk])).content.decode()
    training_page = ada.get(reverse("sessions:detail", args=[training.pk])).content.decode()

    for chart in ("chart-loss", "chart-reward", "chart-return", "chart-sharpe"):
        assert chart not in backtest_page and chart in training_page
    assert "chart-cpu" in backtest_page


def test_the_session_metrics_table_names_metrics_in_words_and_prints_their_units(ada, make_session):
    session = make_session(S.RUNNING)
    PerformanceMetric.objects.create(session=session, metric_type="eval/total_return", value=0.1234, epoch=1)
    PerformanceMetric.objects.create(session=session, metric_type="train/loss", value=0.000045, epoch=1)
    PerformanceMetric.objects.create(session=session, metric_type="train/episodes", value=12.0, epoch=1)

    page = ada.get(reverse("sessions:detail", args=[session.pk])).content.decode()

    assert '>Validation total return</td><td class="num">12.34%</td>' in page
    assert '>Training loss</td><td class="num">4.500e-05</td>' in page  # not 0.0000
    assert '>Training episodes finished</td><td class="num">12</td>' in page


def test_the_session_list_shows_each_results_key_numbers_in_words(ada, make_session):
    make_session(S.COMPLETED, result_data={"report": known_report()})

    page = ada.get(reverse("sessions:list")).content.decode()

    assert "Test total return" in page and "Test Sharpe ratio" in page
    assert "20.00% / -20.00%" in page


def test_staff_see_someone_elses_session_without_a_link_to_the_strategy_they_may_not_see(
    client, staff_user, make_session
):
    session = make_session("running", progress_total=10)
    client.force_login(staff_user)

    page = client.get(reverse("sessions:detail", args=[session.pk])).content.decode()

    assert session.strategy.name in page
    assert reverse("strategies:detail", args=[session.strategy_id]) not in page
