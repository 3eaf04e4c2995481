// The dashboard's sessions panels, kept current: every few seconds the page fetches them as the server
// renders them (the dashboard with ?part=live, by the same template) and swaps them in. A session
// submitted, paused or finished anywhere (another tab, the API, a worker) shows without a reload, and
// the page prints nothing the server did not.
(function () {
  "use strict";

  const root = document.getElementById("dashboard-live");
  if (!root) return;
  const POLL_MS = 3000;
  const PARTS = ["active-panel", "results-panel"];

  async function refresh() {
    // A tab in the background asks for nothing; it catches up when shown again.
    if (document.hidden) return true;
    const response = await fetch(root.dataset.partUrl, { credentials: "same-origin" });
    // Logged out: the login page answers instead (a redirect). Stop rather than swap it in.
    if (!response.ok || response.redirected) return false;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const id of PARTS) {
      const now = document.getElementById(id);
      const next = fresh.getElementById(id);
      if (now && next && now.innerHTML !== next.innerHTML) now.replaceWith(next);
    }
    root.dataset.refreshed = String(Date.now());
    return true;
  }

  async function tick() {
    let again = true;
    try {
      again = await refresh();
    } catch (error) {
      console.warn("dashboard refresh failed", error);  // the network: the next tick tries again
    }
    if (again) setTimeout(tick, POLL_MS);
  }

  setTimeout(tick, POLL_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh().catch(() => {}); });
})();
