"""A deployment's page in a real browser follows a trading process bar by bar: the figures, the
positions and the equity chart change as the bars are recorded, without a reload; the Pause button
stops the bars.

Chromium opens the page of a pending paper replay of a tiny trained policy on daphne. The trading
process is the product's own (trading.process.TradingProcess), run in a thread of this test rather than
as a `manage.py trade` subprocess: `trade` is that same loop (TradingProcess.run: tick, wait, tick), and
in a thread the test can first step it to an exact bar and then, with the loop running freely, count its
ticks, so "the pause stopped the bars" is a count of ticks that traded nothing, not a wait of some
seconds. The thread writes the test database as a second process would (its own connection, a
transaction per bar) and the page reads it through daphne's process.
"""
import os
import tempfile
import threading

from django.conf import settings
from django.db import connections
from django.test import override_settings
from playwright.sync_api import expect

from sessions.services import session_submit
from strategies.services import strategy_create
from tests.browser.helpers import WAIT_MS, BrowserTestCase, as_worker
from tests.platform.session_helpers import PM, run_here, tiny
from trading.models import Deployment
from trading.process import TradingProcess
from trading.services import deployment_create

TICKS_WHILE_PAUSED = 20
# Set to a path to keep a screenshot of the page at the end (a look at the layout, for a person).
SCREENSHOT = os.environ.get("TRADEMASTER_TEST_SCREENSHOT")


def money(value: float) -> str:
    return f"{value:,.2f}"


def number(value: float) -> str:
    return f"{value:,.6f}".rstrip("0").rstrip(".")


def advance(process: TradingProcess, pk: int, bars: int) -> Deployment:
    """Tick `process` until deployment `pk` has traded `bars` bars."""
    for _ in range(10_000):
        process.tick()
        deployment = Deployment.objects.get(pk=pk)
        if deployment.bars_done >= bars:
            return deployment
    raise AssertionError(f"deployment {pk} stayed at {deployment.bars_done} bars")


class TradingLoop:
    """TradingProcess.run's loop in a thread, counting its ticks."""

    def __init__(self, process: TradingProcess):
        self.process = process
        self.ticks = 0
        self.error: BaseException | None = None
        self.ticked = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="trading-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                wait = self.process.tick()
                with self.ticked:
                    self.ticks += 1
                    self.ticked.notify_all()
                self.stop.wait(wait)
        except BaseException as error:  # noqa: BLE001 - said by wait_ticks and close
            self.error = error
        finally:
            with self.ticked:
                self.ticked.notify_all()
            connections.close_all()

    def wait_ticks(self, count: int) -> None:
        """Return once the loop has ticked `count` more times."""
        with self.ticked:
            target = self.ticks + count
            assert self.ticked.wait_for(lambda: self.ticks >= target or self.error, timeout=WAIT_MS / 1000)
        assert self.error is None, self.error

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=WAIT_MS / 1000)
        assert not self.thread.is_alive() and self.error is None, self.error


@override_settings(TRADEMASTER={
    **settings.TRADEMASTER, "RUNS_DIR": tempfile.mkdtemp(prefix="browser-runs-"),
    "DEPLOYMENTS_DIR": tempfile.mkdtemp(prefix="browser-deployments-"), "TRADE_IDLE_SECONDS": 0.0,
    # The training below runs in this process: no heartbeat or sampler thread writing beside it.
    "HEARTBEAT_SECONDS": 3600, "RESOURCE_SAMPLE_SECONDS": 3600,
})
class DeploymentPageLiveTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        strategy = strategy_create(owner=self.user, name="tiny", task=PM, agent="ppo", dataset=self.dataset,
                                   params=tiny(1))
        trained = run_here(session_submit(strategy=strategy, user=self.user, enqueue=False))
        assert trained.status == "completed", trained.error
        self.deployment = deployment_create(session=trained, user=self.user)
        self.process = TradingProcess()
        self.loop: TradingLoop | None = None

    def tearDown(self):
        if self.loop is not None:
            self.loop.stop.set()
            self.loop.thread.join(timeout=WAIT_MS / 1000)
        as_worker(self.process.release_all)
        super().tearDown()

    def test_equity_and_positions_follow_the_bars_and_pause_stops_them(self):
        page = self.open(f"/deployments/{self.deployment.pk}/")
        root = page.locator("#deployment")
        expect(page.locator("#live-state")).to_have_text("live", timeout=WAIT_MS)
        expect(page.locator("#fig-equity")).to_have_text("—")
        expect(page.locator("#positions")).to_contain_text("No positions yet.")
        expect(page.locator("#status-badge")).to_have_text("Pending")

        for bars in (3, 6):
            done = as_worker(lambda bars=bars: advance(self.process, self.deployment.pk, bars))
            positions = as_worker(lambda done=done: list(done.positions.order_by("symbol").values_list(
                "symbol", "quantity", "last_price")))
            expect(root).to_have_attribute("data-last-bar", str(done.last_bar), timeout=WAIT_MS)
            expect(page.locator("#status-badge")).to_have_text("Running")
            expect(page.locator("#fig-equity")).to_have_text(money(done.equity))
            expect(page.locator("#fig-cash")).to_have_text(money(done.cash))
            expect(page.locator("#fig-bars")).to_have_text(str(bars))
            expect(page.locator("#chart-equity")).to_have_attribute("data-points", str(bars), timeout=WAIT_MS)
            assert positions, "the policy bought nothing in the first bars"
            rows = page.locator("#positions tbody tr:not(.empty)")
            expect(rows).to_have_count(len(positions))
            for symbol, quantity, price in positions:
                cells = page.locator(f'#positions tr[data-symbol="{symbol}"] td')
                expect(cells.nth(1)).to_have_text(number(quantity))
                expect(cells.nth(2)).to_have_text(number(price))
                expect(cells.nth(3)).to_have_text(money(quantity * price))
            expect(page.locator("#positions tr.empty")).to_be_hidden()
        expect(page.locator("#chart-equity canvas")).to_have_count(1)  # uPlot drew, from our static files
        expect(page.locator("#fills tbody tr:not(.empty)").first).to_be_visible()

        # The loop runs freely: the page moves on by itself, then the Pause button stops it.
        self.loop = TradingLoop(self.process)
        expect(root).not_to_have_attribute("data-last-bar", str(done.last_bar), timeout=WAIT_MS)
        page.locator("#actions").get_by_role("button", name="Pause").click()  # a POST, then the page again

        expect(page.locator("#status-badge")).to_have_text("Paused", timeout=WAIT_MS)
        paused = as_worker(lambda: Deployment.objects.get(pk=self.deployment.pk))
        assert paused.status == "paused"
        self.loop.wait_ticks(TICKS_WHILE_PAUSED)
        after = as_worker(lambda: Deployment.objects.get(pk=self.deployment.pk))
        assert after.bars_done == paused.bars_done and after.last_bar == paused.last_bar
        expect(root).to_have_attribute("data-last-bar", str(paused.last_bar), timeout=WAIT_MS)
        expect(page.locator("#fig-equity")).to_have_text(money(paused.equity))
        expect(page.locator("#live-state")).to_have_text("live", timeout=WAIT_MS)
        expect(page.locator("#actions").get_by_role("button", name="Resume")).to_be_visible()
        expect(page.locator("#events")).to_contain_text("running -> paused: paused by ada")
        self.loop.close()
        if SCREENSHOT:
            page.screenshot(path=SCREENSHOT, full_page=True)
        assert self.errors == []
