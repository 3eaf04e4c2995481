"""The risk pages in a real browser: on a deployment's page the risk decisions the trading process
records appear without a reload (refusals also in their own list), and the kill switch trips only once
its confirmation is ticked, after which every page shows the banner until it is lifted; the limits and
kill-switch pages fit a phone and a desktop window."""
from playwright.sync_api import expect

from risk.limits import Limits
from risk.services import emergency_stop, limits_set
from tests.browser.helpers import DESKTOP, PHONE, WAIT_MS, BrowserTestCase, as_worker
from tests.platform.deployment_helpers import make_deployment
from tests.platform.risk_helpers import decide


class RiskOnTheDeploymentPageTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.deployment = make_deployment(self.strategy)

    def test_decisions_arrive_live_and_the_kill_switch_trips_with_its_confirmation(self):
        first = decide(self.deployment, bar=0)
        page = self.open(f"/deployments/{self.deployment.pk}/")
        expect(page.locator("#live-state")).to_have_text("live", timeout=WAIT_MS)
        expect(page.locator("#decisions tbody tr:not(.empty)")).to_have_count(1)
        expect(page.locator("#refusals .empty")).to_be_visible()

        approved, refused = as_worker(lambda: (
            decide(self.deployment, bar=1, side="sell", quantity=0.25),
            decide(self.deployment, bar=1, symbol="A1", code="max_order_notional",
                   message="order notional would be 60,000, above the limit of 50,000")))

        rows = page.locator("#decisions tbody tr:not(.empty)")
        expect(rows).to_have_count(3, timeout=WAIT_MS)
        expect(rows.nth(0)).to_have_attribute("data-id", str(refused.pk))
        expect(rows.nth(0)).to_have_class("refused")
        expect(rows.nth(1)).to_have_attribute("data-id", str(approved.pk))
        expect(rows.nth(1).locator("td").nth(4)).to_have_text("0.25")
        expect(rows.nth(2)).to_have_attribute("data-id", str(first.pk))
        refusals = page.locator("#refusals li")
        expect(refusals).to_have_count(1)
        expect(refusals.first).to_contain_text("max_order_notional order notional would be 60,000")
        expect(page.locator("#refusals .empty")).to_be_hidden()

        form = page.locator("#trip-form")
        page.locator("#kill-switch summary").click()
        form.get_by_label("Halt: open orders cancelled, only reducing orders").check()
        form.get_by_role("button", name="Trip the kill switch").click()  # not confirmed: refused
        expect(page.locator(".messages")).to_contain_text("tick", timeout=WAIT_MS)
        expect(page.locator("#kill-switch-banner")).to_have_count(0)

        page.locator("#kill-switch summary").click()
        form.get_by_label("Halt: open orders cancelled, only reducing orders").check()
        form.get_by_label("I understand this stops trading until someone lifts it").check()
        form.get_by_role("button", name="Trip the kill switch").click()
        expect(page.locator("#kill-switch-banner")).to_contain_text(
            f"HALT on deployment #{self.deployment.pk}", timeout=WAIT_MS)
        page.goto(f"{self.live_server_url}/sessions/")
        expect(page.locator("#kill-switch-banner")).to_be_visible()

        page.goto(f"{self.live_server_url}/deployments/{self.deployment.pk}/")
        page.locator("#lift").click()
        expect(page.locator("#no-switch")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("#kill-switch-banner")).to_have_count(0)
        assert self.errors == []

    def test_the_risk_pages_fit_a_phone_and_a_desktop_window(self):
        limits_set(scope="user", limits=Limits(max_order_notional=50_000.0, allowed_symbols=frozenset({"A0"})),
                   actor=self.user, user=self.user)
        emergency_stop("deployment", "halt", actor=self.user, deployment=self.deployment, reason="drill")
        decide(self.deployment, bar=0, code="max_order_notional", message="order notional would be 60,000, "
                                                                          "above the limit of 50,000")
        paths = ["/risk/limits/", f"/deployments/{self.deployment.pk}/risk/", "/risk/kill-switch/",
                 f"/risk/limits/strategies/{self.strategy.pk}/", f"/deployments/{self.deployment.pk}/"]
        for viewport in (PHONE, DESKTOP):
            for path in paths:
                page = self.open(path, viewport=viewport)
                page.wait_for_load_state("networkidle")
                expect(page.locator("#kill-switch-banner")).to_be_visible()
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, (path, viewport, overflow)
                page.context.close()
        assert self.errors == []
