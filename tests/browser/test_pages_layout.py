"""The pages a quant reads, as Chromium lays them out: the report's chart axes print their labels whole,
the comparison fits a 1280-px window, and every page works at phone width (390 px) without the page
itself scrolling sideways (a wide table scrolls in its own box).

TRADEMASTER_TEST_SCREENSHOTS=<dir> keeps a screenshot of each page at each width, for a person to look at.
"""
import json
import os
from pathlib import Path

from playwright.sync_api import expect

from engine.backtest.report import backtest_report, json_safe
from sessions.models import PerformanceMetric, StrategySession
from sessions.models import SessionStatus as S
from sessions.services import session_transition
from tests.browser.helpers import DESKTOP, PHONE, WAIT_MS, BrowserTestCase

SCREENSHOTS = os.environ.get("TRADEMASTER_TEST_SCREENSHOTS")
DATES = [f"2021-01-{day:02d}" for day in range(4, 16)]
# uPlot's axis font (its default), which the y axis must be wide enough for.
AXIS_FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif'


def million_report() -> dict:
    """A real engine report of an account of 1,000,000 that gains 2 % a bar but every third, when it
    loses 1 %, against a benchmark that gains 1 % and loses 0.5 % in turn."""
    values = [1_000_000.0]
    for k in range(1, len(DATES)):
        values.append(values[-1] * (0.99 if k % 3 == 0 else 1.02))
    trades = [{"date": DATES[0], "tic": "AAPL", "side": "buy", "shares": 7727.0, "price": 129.41000366210938,
               "fee": 999.99}]
    benchmark = [1_000_000.0]
    for k in range(1, len(DATES)):
        benchmark.append(benchmark[-1] * (1.01 if k % 2 else 0.995))
    report = backtest_report(values=values, benchmark_values=benchmark, periods_per_year=252,
                             dates=DATES, trades=trades, fees=[999.99] + [0.0] * (len(DATES) - 2))
    return json.loads(json.dumps(json_safe(report) | {"benchmark": "buy_and_hold", "split": "test"}))


class PagesLayoutTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.done = StrategySession.objects.create(
            strategy=self.strategy, session_type=StrategySession.SessionType.TRAINING,
            result_data={"report": million_report()}, progress_epoch=3, progress_total=3,
        )
        for step in (S.QUEUED, S.RUNNING, S.COMPLETED):
            session_transition(session=self.done, to=step)
        PerformanceMetric.objects.bulk_create(
            PerformanceMetric(session=session, metric_type=name, value=value * epoch, epoch=epoch)
            for session in (self.session, self.done) for epoch in (1, 2, 3)
            for name, value in (("eval/total_return", 0.0123), ("eval/sharpe", 0.41), ("train/loss", 0.000045))
        )

    def pages(self) -> dict[str, str]:
        return {
            "dashboard": "/",
            "sessions": "/sessions/",
            "session": f"/sessions/{self.session.pk}/",
            "report": f"/sessions/{self.done.pk}/report/",
            "compare": f"/sessions/compare/?ids={self.session.pk},{self.done.pk}",
        }

    def shoot(self, page, name: str) -> None:
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)

    def test_the_equity_axis_prints_its_labels_whole(self):
        page = self.open(f"/sessions/{self.done.pk}/report/")
        chart = page.locator('.report-chart[data-curve="equity"]')
        expect(chart.locator("canvas")).to_have_count(1, timeout=WAIT_MS)

        # The y axis (uPlot's second .u-axis, left of the plot) against the widest label it may print.
        axis_width = chart.locator(".u-axis").nth(1).evaluate("el => el.getBoundingClientRect().width")
        label_width = page.evaluate(
            """([font, text]) => { const ctx = document.createElement("canvas").getContext("2d");
                ctx.font = font; return ctx.measureText(text).width; }""", [AXIS_FONT, "1,200,000"])

        assert axis_width >= label_width + 10, (axis_width, label_width)  # the label and its tick
        assert self.errors == []

    def test_the_comparison_fits_a_1280_px_window(self):
        page = self.open(self.pages()["compare"])
        table = page.locator("#compare-table")
        expect(table).to_be_visible()

        widths = table.evaluate("el => [el.scrollWidth, el.parentElement.clientWidth]")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")

        assert widths[0] <= widths[1] and overflow <= 0, (widths, overflow)
        self.shoot(page, "compare-1280")

    def test_every_page_works_at_phone_width(self):
        for name, path in self.pages().items():
            page = self.open(path, viewport=PHONE)
            page.wait_for_load_state("networkidle")

            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            self.shoot(page, f"{name}-390")

            assert overflow <= 0, (name, overflow)
            page.context.close()
        assert self.errors == []

    def test_every_page_fits_a_1280_px_window_without_script_errors(self):
        for name, path in self.pages().items():
            page = self.open(path, viewport=DESKTOP)
            page.wait_for_load_state("networkidle")

            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            self.shoot(page, f"{name}-1280")

            assert overflow <= 0, (name, overflow)
            page.context.close()
        assert self.errors == []
