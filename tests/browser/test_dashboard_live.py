"""The dashboard in a real browser follows the user's sessions without a reload: the progress of a
running one, a session submitted elsewhere (another tab, the API), a paused one, and a finished one
moving from the active panel to the latest results. And the session page's alerts box shows an alert
the moment it is recorded.
"""
from playwright.sync_api import expect

from sessions import alerts
from sessions.models import AlertKind
from sessions.models import SessionStatus as S
from sessions.services import session_stop, session_submit
from sessions.services.worker import session_finish, session_record_epoch
from tests.browser.helpers import EPOCHS, WAIT_MS, BrowserTestCase, as_worker, epoch_metrics


class DashboardLiveTests(BrowserTestCase):
    def test_the_dashboard_follows_new_paused_and_finished_sessions_without_a_reload(self):
        page = self.open("/")
        active = page.locator("#active-sessions")
        row = active.locator(f'tr[data-session-id="{self.session.pk}"]')
        expect(row.locator(".js-status")).to_have_text("Running")
        expect(row.locator(".js-progress")).to_have_text("—")

        for epoch in (1, 2, 3):
            as_worker(lambda epoch=epoch: session_record_epoch(
                session=self.session, epoch=epoch, epochs=EPOCHS, metrics=epoch_metrics(epoch),
                checkpoint=f"/tmp/ckpt-{epoch}.pt",
            ))
        expect(row.locator(".js-progress")).to_have_text("3/10", timeout=WAIT_MS)

        # Submitted elsewhere: the row appears, queued.
        submitted = as_worker(lambda: session_submit(strategy=self.strategy, user=self.user, enqueue=False))
        new_row = active.locator(f'tr[data-session-id="{submitted.pk}"]')
        expect(new_row.locator(".js-status")).to_have_text("Queued", timeout=WAIT_MS)

        # The running one pauses: it stays, as paused.
        as_worker(lambda: session_finish(session=self.session, to=S.PAUSED))
        expect(row.locator(".js-status")).to_have_text("Paused", timeout=WAIT_MS)
        expect(row.locator(".js-progress")).to_have_text("3/10")

        # The new one is stopped before it ran: it leaves the panel; nothing else changes.
        as_worker(lambda: session_stop(session=submitted, user=self.user))
        expect(new_row).to_have_count(0, timeout=WAIT_MS)
        expect(row).to_have_count(1)
        assert self.errors == []

    def test_a_finished_session_moves_to_the_latest_results(self):
        page = self.open("/")
        expect(page.locator("#latest-results")).to_contain_text("No completed session yet")

        as_worker(lambda: session_finish(session=self.session, to=S.COMPLETED))

        expect(page.locator(f'#active-sessions tr[data-session-id="{self.session.pk}"]')).to_have_count(
            0, timeout=WAIT_MS)
        result = page.locator(f'#latest-results tr[data-session-id="{self.session.pk}"]')
        expect(result).to_contain_text(f"#{self.session.pk} training")
        expect(result).to_contain_text("— / —")  # no report: dashes, never a made-up number
        expect(page.locator("#active-sessions")).to_contain_text("Nothing running, queued or paused")
        assert self.errors == []


class AlertsBoxTests(BrowserTestCase):
    def test_an_alert_shows_in_the_alerts_box_as_it_is_recorded(self):
        page = self.open(f"/sessions/{self.session.pk}/")
        box = page.locator("#alerts")
        expect(page.locator("#live-state")).to_have_text("live", timeout=WAIT_MS)
        expect(box).to_be_hidden()

        as_worker(lambda: alerts.alert_record(
            session=self.session, kind=AlertKind.LOSS_DIVERGING, epoch=4,
            message="loss 12.5 at epoch 4 is over 10 times the median of the earlier epochs", value=12.5,
        ))

        expect(box).to_be_visible(timeout=WAIT_MS)
        item = box.locator("li")
        expect(item).to_have_count(1)
        expect(item).to_contain_text("loss 12.5 at epoch 4 is over 10 times the median")
        expect(item).to_have_class("alert alert-warning")
        assert self.errors == []
