"""The session page in a real browser follows a running session as a worker writes it: the charts gain
the epochs, the progress bar moves, the status badge and the actions change, without a reload. The
dashboard's active panel follows it too (by polling the API).

Chromium opens the page of a running session on daphne; the test then writes what a worker writes,
through the same services (session_record_epoch, resource_usage_record, session_finish), and waits,
bounded, for the page to show it.
"""
import datetime
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

from channels.testing import ChannelsLiveServerTestCase
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client, override_settings
from playwright.sync_api import expect, sync_playwright

from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.services import session_transition
from sessions.services.worker import resource_usage_record, session_finish, session_record_epoch, session_start
from strategies.models import Dataset, Strategy
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

EPOCHS = 10
WAIT_MS = 15_000
# Set to a path to keep a screenshot of the page at the end (a look at the layout, for a person).
SCREENSHOT = os.environ.get("TRADEMASTER_TEST_SCREENSHOT")


def epoch_metrics(epoch: int) -> dict[str, float]:
    return {
        "train/loss": 1.0 / epoch, "train/policy_loss": 0.6 / epoch, "train/value_loss": 0.4 / epoch,
        "train/entropy": 1.3, "train/reward": 0.1 * epoch, "eval/total_return": 0.02 * epoch,
        "eval/sharpe": 0.3 * epoch, "eval/reward": 0.05 * epoch, "time/epoch_seconds": 2.0,
    }


def as_worker(work):
    """Run `work` in a thread of its own, as a worker process would write: Playwright's sync API keeps
    an event loop in this thread, where Django refuses database calls."""
    def run():
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)


# The server process is forked with the class's settings: its runs (the page's log tail) in a directory
# of their own, not var/runs.
@override_settings(TRADEMASTER={**settings.TRADEMASTER, "RUNS_DIR": tempfile.mkdtemp(prefix="browser-runs-")})
class SessionPageLiveTests(ChannelsLiveServerTestCase):
    def setUp(self):
        user = get_user_model().objects.create_user(username="ada", password="correct horse battery staple")
        dataset = Dataset.objects.create(
            name="synthetic", frequency="1d", periods_per_year=252.0, tickers=["A0"], path="synthetic",
            start_date=datetime.date(2000, 1, 3), end_date=datetime.date(2005, 10, 1), checksum="1" * 64, n_bars=1500,
        )
        strategy = Strategy.objects.create(
            owner=user, name="ppo live", task=Strategy.Task.PORTFOLIO_MANAGEMENT, agent="ppo", dataset=dataset,
            config={"trainer": {"device": "cpu"}},
        )
        session = StrategySession.objects.create(
            strategy=strategy, session_type=StrategySession.SessionType.TRAINING, config={"trainer": {"device": "cpu"}},
        )
        session_transition(session=session, to=S.QUEUED)
        self.session = session_start(session=session, process_id=4242, host="browser-test")
        client = Client()
        client.force_login(user)
        self.cookie = client.cookies["sessionid"].value

    def test_the_charts_and_the_progress_follow_the_worker_without_a_reload(self):
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 1100})
                context.add_cookies([{"name": "sessionid", "value": self.cookie, "url": self.live_server_url}])
                page = context.new_page()
                errors = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(f"{self.live_server_url}/sessions/{self.session.pk}/")

                loss = page.locator("#chart-loss")
                expect(page.locator("#live-state")).to_have_text("live", timeout=WAIT_MS)
                expect(loss).to_have_attribute("data-points", "0", timeout=WAIT_MS)
                expect(page.locator("#progress-text")).to_have_text("—")
                expect(loss.locator("canvas")).to_have_count(1)  # uPlot drew, from our static files

                for epoch in (1, 2, 3):
                    as_worker(lambda epoch=epoch: session_record_epoch(
                        session=self.session, epoch=epoch, epochs=EPOCHS, metrics=epoch_metrics(epoch),
                        checkpoint=f"/tmp/ckpt-{epoch}.pt",
                    ))
                as_worker(lambda: resource_usage_record(
                    session=self.session, sample={"cpu_percent": 87.5, "memory_mb": 1234.5},
                ))

                expect(loss).to_have_attribute("data-points", "3", timeout=WAIT_MS)
                for chart in ("#chart-reward", "#chart-return", "#chart-sharpe"):
                    expect(page.locator(chart)).to_have_attribute("data-points", "3", timeout=WAIT_MS)
                expect(page.locator("#progress-text")).to_have_text("3/10", timeout=WAIT_MS)
                expect(page.locator("#progress-bar")).to_have_attribute("aria-label", "Epoch 3 of 10")
                expect(page.locator("#progress-eta")).to_have_text("ETA 14s")  # 7 epochs left at 2 s each
                expect(page.locator("#chart-cpu")).to_have_attribute("data-points", "1", timeout=WAIT_MS)
                # The page knows the last point it has, to resume after it on a reconnect.
                last_id = as_worker(lambda: self.session.metrics.order_by("-pk").values_list("pk", flat=True).first())
                expect(page.locator("#live")).to_have_attribute("data-last-id", str(last_id))

                actions = page.locator("#actions")
                expect(actions.get_by_role("button", name="Pause")).to_be_visible()
                as_worker(lambda: session_finish(session=self.session, to=S.COMPLETED))
                expect(page.locator("#status-badge")).to_have_text("Completed", timeout=WAIT_MS)
                expect(actions.get_by_role("button", name="Backtest")).to_be_visible()
                expect(actions.get_by_role("button", name="Pause")).to_have_count(0)
                expect(actions.get_by_role("button", name="Stop")).to_have_count(0)
                expect(page.locator("#progress-eta")).to_have_text("")

                if SCREENSHOT:
                    page.screenshot(path=SCREENSHOT, full_page=True)
                assert errors == []
            finally:
                browser.close()

    def test_the_dashboard_follows_its_active_sessions_without_a_reload(self):
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context()
                context.add_cookies([{"name": "sessionid", "value": self.cookie, "url": self.live_server_url}])
                page = context.new_page()
                errors = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(f"{self.live_server_url}/")
                row = page.locator(f'#active-sessions tr[data-session-id="{self.session.pk}"]')
                expect(row.locator(".js-status")).to_have_text("Running")
                expect(row.locator(".js-progress")).to_have_text("—")

                # The page polls the API's lists ({"items": [...]}): the row takes the new progress.
                for epoch in (1, 2, 3):
                    as_worker(lambda epoch=epoch: session_record_epoch(
                        session=self.session, epoch=epoch, epochs=EPOCHS, metrics=epoch_metrics(epoch),
                        checkpoint=f"/tmp/ckpt-{epoch}.pt",
                    ))
                expect(row.locator(".js-progress")).to_have_text("3/10", timeout=WAIT_MS)

                # Gone from the lists of running and queued sessions: the page asks for it by id.
                as_worker(lambda: session_finish(session=self.session, to=S.COMPLETED))
                expect(row.locator(".js-status")).to_have_text("Completed", timeout=WAIT_MS)
                assert errors == []
            finally:
                browser.close()
