// The dashboard's running and queued sessions, kept current by polling the JSON API every 2 s with the
// login cookie: simpler than a socket per row, and the list is short.
(function () {
  "use strict";

  const table = document.getElementById("active-sessions");
  if (!table) return;
  const POLL_MS = 2000;
  const FINAL = new Set(["completed", "failed", "cancelled"]);

  function rows() {
    return new Map([...table.querySelectorAll("tr[data-session-id]")].map((tr) => [tr.dataset.sessionId, tr]));
  }

  async function get(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }

  function render(tr, session) {
    const status = tr.querySelector(".js-status");
    const progress = tr.querySelector(".js-progress");
    tr.dataset.status = session.status;
    const label = session.status.charAt(0).toUpperCase() + session.status.slice(1);
    const notes = [];
    if (session.pause_requested && session.status === "running") notes.push("pause requested");
    if (session.cancel_requested && !FINAL.has(session.status)) notes.push("stop requested");
    status.innerHTML = "";
    const badge = document.createElement("span");
    badge.className = `status status-${session.status}`;
    badge.textContent = label;
    status.append(badge, ...notes.map((n) => Object.assign(document.createElement("span"), { className: "muted", textContent: ` (${n})` })));
    if (!session.progress_total) {
      progress.textContent = "—";
      return;
    }
    const bar = document.createElement("progress");
    bar.max = session.progress_total;
    bar.value = session.progress_epoch;
    bar.setAttribute("aria-label", `Epoch ${session.progress_epoch} of ${session.progress_total}`);
    progress.replaceChildren(bar, ` ${session.progress_epoch}/${session.progress_total}`);
  }

  async function poll() {
    const shown = rows();
    const live = [...shown.values()].filter((tr) => !FINAL.has(tr.dataset.status));
    if (!live.length) return;  // every row has ended: nothing left to follow
    try {
      const [running, queued] = await Promise.all([get("/api/sessions?status=running"), get("/api/sessions?status=queued")]);
      // Pages of the API's lists ({items, count}); a row beyond the first page is asked for by id below.
      const current = new Map([...running.items, ...queued.items].map((s) => [String(s.id), s]));
      for (const tr of live) {
        const id = tr.dataset.sessionId;
        // A row missing from both lists has moved on (paused, ended): ask for it once to show where to.
        render(tr, current.get(id) || (await get(`/api/sessions/${id}`)));
      }
    } catch (error) {
      console.warn("dashboard poll failed", error);  // the next tick tries again
    }
    setTimeout(poll, POLL_MS);
  }

  setTimeout(poll, POLL_MS);
})();
