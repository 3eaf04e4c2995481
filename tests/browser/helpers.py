"""What the browser tests share: a running session of a logged-in user on daphne, Chromium opened on
its pages, and writing as a worker writes."""
import datetime
import tempfile
from concurrent.futures import ThreadPoolExecutor

from channels.testing import ChannelsLiveServerTestCase
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client, override_settings
from playwright.sync_api import sync_playwright

from sessions.models import SessionStatus as S
from sessions.models import StrategySession
from sessions.services import session_transition
from sessions.services.worker import session_start
from strategies.models import Dataset, Strategy
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

EPOCHS = 10
WAIT_MS = 15_000
DESKTOP = {"width": 1280, "height": 1000}
PHONE = {"width": 390, "height": 844}


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
class BrowserTestCase(ChannelsLiveServerTestCase):
    """ada's running training session (self.session) of her strategy (self.strategy); self.open(path)
    opens one of the site's pages in Chromium, logged in as ada, and collects its script errors in
    self.errors."""

    def setUp(self):
        self.user = get_user_model().objects.create_user(username="ada", password="correct horse battery staple")
        self.dataset = Dataset.objects.create(
            name="synthetic", frequency="1d", periods_per_year=252.0, tickers=["A0"], path="synthetic",
            start_date=datetime.date(2000, 1, 3), end_date=datetime.date(2005, 10, 1), checksum="1" * 64, n_bars=1500,
        )
        self.strategy = Strategy.objects.create(
            owner=self.user, name="ppo live", task=Strategy.Task.PORTFOLIO_MANAGEMENT, agent="ppo",
            dataset=self.dataset, config={"trainer": {"device": "cpu"}},
        )
        session = StrategySession.objects.create(
            strategy=self.strategy, session_type=StrategySession.SessionType.TRAINING,
            config={"trainer": {"device": "cpu"}},
        )
        session_transition(session=session, to=S.QUEUED)
        self.session = session_start(session=session, process_id=4242, host="browser-test")
        self.cookie = self.login(self.user)
        self.errors: list[str] = []
        self._playwright = self.browser = None

    def tearDown(self):
        # Before Django's own teardown, which refuses database calls while Playwright's loop runs.
        if self._playwright is not None:
            self.browser.close()
            self._playwright.stop()

    def login(self, user) -> str:
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    def open(self, path: str, *, viewport=DESKTOP, cookie: str | None = None):
        """A page of the site at `path`. The first call starts Chromium: from then on this thread runs
        Playwright's event loop, and the database is written through as_worker."""
        if self._playwright is None:
            self._playwright = sync_playwright().start()
            self.browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = self.browser.new_context(viewport=viewport)
        context.add_cookies([{"name": "sessionid", "value": cookie or self.cookie, "url": self.live_server_url}])
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(f"{self.live_server_url}{path}")
        return page
