"""The session page in a real browser follows a running session as a worker writes it, and agrees with
itself: the charts gain the epochs, the progress bar moves and the ETA counts down; when the session
ends, the badge, the actions, the facts (times, attempt, device), the metric and resource tables, the
log and why it failed all change, without a reload.

Chromium opens the page of a running session on daphne; the test then writes what a worker writes,
through the same services (session_record_epoch, resource_usage_record, session_finish,
session_retry_or_fail), and waits, bounded, for the page to show it.
"""
import os
import re

from playwright.sync_api import expect

from sessions.models import SessionStatus as S
from sessions.services.worker import (
    resource_usage_record,
    session_finish,
    session_record_epoch,
    session_retry_or_fail,
)
from tests.browser.helpers import EPOCHS, WAIT_MS, BrowserTestCase, as_worker, epoch_metrics

# Set to a path to keep a screenshot of the page at the end (a look at the layout, for a person).
SCREENSHOT = os.environ.get("TRADEMASTER_TEST_SCREENSHOT")


def record_epochs(session, epochs) -> None:
    for epoch in epochs:
        as_worker(lambda epoch=epoch: session_record_epoch(
            session=session, epoch=epoch, epochs=EPOCHS, metrics=epoch_metrics(epoch),
            checkpoint=f"/tmp/ckpt-{epoch}.pt",
        ))


def eta_seconds(text: str) -> int:
    found = re.fullmatch(r"ETA (\d+)s", text)
    assert found, text
    return int(found.group(1))


class SessionPageLiveTests(BrowserTestCase):
    def test_the_charts_and_the_progress_follow_the_worker_without_a_reload(self):
        page = self.open(f"/sessions/{self.session.pk}/")

        loss = page.locator("#chart-loss")
        expect(page.locator("#live-state")).to_have_text("live", timeout=WAIT_MS)
        expect(page.locator("#progress-text")).to_have_text("—")
        # No point yet: the charts are not drawn.
        expect(loss).to_have_attribute("data-points", "0")
        expect(page.locator("figure.live-chart:visible")).to_have_count(0)

        record_epochs(self.session, (1, 2, 3))
        sample = {"cpu_percent": 87.5, "memory_mb": 1234.5}
        as_worker(lambda: resource_usage_record(session=self.session, sample=sample))

        expect(loss).to_have_attribute("data-points", "3", timeout=WAIT_MS)
        expect(loss.locator("canvas")).to_have_count(1)  # uPlot drew, from our static files
        for chart in ("#chart-reward", "#chart-return", "#chart-sharpe"):
            expect(page.locator(chart)).to_have_attribute("data-points", "3", timeout=WAIT_MS)
        expect(page.locator("#progress-text")).to_have_text("3/10", timeout=WAIT_MS)
        expect(page.locator("#progress-bar")).to_have_attribute("aria-label", "Epoch 3 of 10")
        expect(page.locator("#chart-cpu")).to_have_attribute("data-points", "1", timeout=WAIT_MS)
        # The page knows the last point it has, to resume after it on a reconnect.
        last_id = as_worker(lambda: self.session.metrics.order_by("-pk").values_list("pk", flat=True).first())
        expect(page.locator("#live")).to_have_attribute("data-last-id", str(last_id))
        # The tables follow the epochs too (the live part is fetched when the epoch moves).
        expect(page.locator("#tables")).to_contain_text("Validation total return", timeout=WAIT_MS)

        # 7 epochs left at 2 s each, counted from the end of epoch 3: the ETA counts down from 14 s.
        eta = page.locator("#progress-eta")
        expect(eta).to_have_text(re.compile(r"ETA 1[0-4]s"), timeout=WAIT_MS)
        first = eta.text_content()
        expect(eta).not_to_have_text(first, timeout=WAIT_MS)
        assert eta_seconds(eta.text_content()) < eta_seconds(first)

        actions = page.locator("#actions")
        expect(actions.get_by_role("button", name="Pause")).to_be_visible()
        expect(page.locator("#fact-finished")).to_have_text("—")
        log = as_worker(lambda: type(self.session).objects.get(pk=self.session.pk).log_path)
        os.makedirs(os.path.dirname(log), exist_ok=True)
        with open(log, "w") as file:
            file.write("epoch 3/10 done\nsession finished\n")
        as_worker(lambda: session_finish(session=self.session, to=S.COMPLETED))

        expect(page.locator("#status-badge")).to_have_text("Completed", timeout=WAIT_MS)
        expect(actions.get_by_role("button", name="Backtest")).to_be_visible(timeout=WAIT_MS)
        expect(actions.get_by_role("button", name="Pause")).to_have_count(0)
        expect(actions.get_by_role("button", name="Stop")).to_have_count(0)
        expect(eta).to_have_text("")
        expect(page.locator("#fact-finished")).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"))
        expect(page.locator("#fact-attempt")).to_have_text("1")
        expect(page.locator("#fact-device")).to_have_text("cpu, 1 CPU thread")
        expect(page.locator("#fact-heartbeat")).to_have_text(re.compile(r"\d{4}-\d\d-\d\d"))
        expect(page.locator("#tables")).to_contain_text("87.5")
        expect(page.locator("#log")).to_contain_text("session finished")
        # The charts stayed: the live part does not redraw them.
        expect(loss.locator("canvas")).to_have_count(1)

        if SCREENSHOT:
            page.screenshot(path=SCREENSHOT, full_page=True)
        assert self.errors == []

    def test_a_stop_leaves_no_pause_or_stop_and_the_end_shows_without_a_reload(self):
        page = self.open(f"/sessions/{self.session.pk}/")
        actions = page.locator("#actions")
        expect(page.locator("#live-state")).to_have_text("live", timeout=WAIT_MS)

        actions.get_by_role("button", name="Stop").click()  # a POST, then the page again

        expect(page.locator("#facts")).to_contain_text("(stop requested)", timeout=WAIT_MS)
        expect(actions.get_by_role("button")).to_have_count(0)
        expect(page.locator("#live-state")).to_have_text("live", timeout=WAIT_MS)
        as_worker(lambda: session_finish(session=self.session, to=S.CANCELLED, error="stopped after epoch 0"))

        expect(page.locator("#status-badge")).to_have_text("Cancelled", timeout=WAIT_MS)
        expect(page.locator("#facts")).not_to_contain_text("stop requested", timeout=WAIT_MS)
        expect(page.locator("#fact-finished")).to_have_text(re.compile(r"\d{4}-\d\d-\d\d"))
        expect(actions.get_by_role("button")).to_have_count(0)
        assert self.errors == []

    def test_a_failure_says_why_in_one_sentence_without_a_reload(self):
        page = self.open(f"/sessions/{self.session.pk}/")
        expect(page.locator("#live-state")).to_have_text("live", timeout=WAIT_MS)
        expect(page.locator("#failure")).to_be_hidden()
        traceback = ('Traceback (most recent call last):\n  File "/srv/trademaster/engine/data/reader.py", line 9\n'
                     "engine.data.DataError: /srv/trademaster/var/data/btc.csv has 10 bars; the window needs 30\n")

        as_worker(lambda: session_retry_or_fail(session=self.session, error=traceback, retry=False))

        expect(page.locator("#status-badge")).to_have_text("Failed", timeout=WAIT_MS)
        reason = page.locator("#failure-reason")
        expect(reason).to_have_text("btc.csv has 10 bars; the window needs 30", timeout=WAIT_MS)
        expect(page.locator("#failure")).to_contain_text("Why it failed")
        assert "/srv/" not in page.locator("#failure").inner_text() and "Traceback" not in page.content()
        # The alerts box says it too, from the stream.
        expect(page.locator("#alerts")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("#alerts li")).to_have_count(1)
        # A failed training resumes from its last good checkpoint: the one action left.
        expect(page.locator("#actions").get_by_role("button")).to_have_text(["Resume"])
        assert self.errors == []
