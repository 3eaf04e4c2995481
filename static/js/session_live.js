// The session page, live: one WebSocket (/ws/sessions/<id>/, protocol in sessions/consumers.py) feeds
// the progress bar, the status badge, the metric and resource charts and the alerts. When the stream
// says the session moved (its status or its epoch), the page fetches its live part as the server
// renders it (?part=live: the actions, the facts, why it failed, the tables, the log) and swaps it in,
// so that all of the page agrees with the badge without a reload, and shows only what the server does.
// The page works without any of this (it is server-rendered); this only keeps it current.
(function () {
  "use strict";

  const root = document.getElementById("live");
  if (!root || !window.uPlot || !window.TMCharts) return;
  const { lineChart, align, percent } = window.TMCharts;

  const sessionId = root.dataset.sessionId;
  const FINAL = new Set(["completed", "failed", "cancelled"]);
  // Refusals the server closes with (consumers.CLOSE_*): retrying would be refused again.
  const REFUSED = { 4400: "bad request", 4401: "logged out: reload the page to log in", 4404: "session not found" };
  const MAX_BACKOFF_MS = 30000;
  const GOING_AWAY = 1001;
  const ETA_EPOCHS = 5;  // the ETA averages the last few epochs: the first ones include warm-up
  const RESOURCE_SAMPLES = 360;  // 30 min at the 5 s sampling rate
  // The parts of ?part=live (templates/sessions/live_part.html), by id.
  const PARTS = ["actions", "facts", "failure", "tables", "log"];
  // The stream carries no heartbeat: while the session runs, its live part is fetched this often too
  // (the worker beats every 10 s; a heartbeat that stops moving is how an operator sees a lost worker).
  const REFRESH_MS = 15000;

  const METRIC_CHARTS = {
    "chart-loss": [["train/loss", "loss"], ["train/policy_loss", "policy loss"], ["train/value_loss", "value loss"]],
    "chart-reward": [["train/reward", "training reward"]],
    "chart-return": [["eval/total_return", "validation total return"]],
    "chart-sharpe": [["eval/sharpe", "validation Sharpe ratio"]],
  };
  const FORMATS = { "chart-return": percent };

  const values = {};  // metric type -> Map(epoch -> value); a re-run epoch's new rows replace its old ones
  let lastEpochAt = null;  // when the newest epoch ended (ms, the server's clock): the ETA counts from it
  const charts = {};
  for (const [id, metrics] of Object.entries(METRIC_CHARTS)) {
    const el = document.getElementById(id);
    if (el) charts[id] = lineChart(el, { series: metrics.map(([, label]) => ({ label })), yFormat: FORMATS[id] });
  }
  const cpuEl = document.getElementById("chart-cpu");
  const memEl = document.getElementById("chart-memory");
  const cpuChart = cpuEl && lineChart(cpuEl, { time: true, height: 160, series: [{ label: "CPU %" }, { label: "GPU %" }] });
  const memChart = memEl && lineChart(memEl, { time: true, height: 160, series: [{ label: "memory MB" }, { label: "GPU memory MB" }] });
  const history = document.getElementById("resource-history");
  const samples = history ? JSON.parse(history.textContent) : [];

  let lastId = 0;
  // The last resource sample this page has: the server sends what came after it, each sample once.
  let lastSampleId = samples.reduce((last, s) => Math.max(last, s.id || 0), 0);
  let state = { status: root.dataset.status, progress_epoch: +root.dataset.epoch, progress_total: +root.dataset.total };
  let redrawTimer = null;

  // Metrics ---------------------------------------------------------------------------------------

  function addPoints(points) {
    for (const p of points) {
      (values[p.metric_type] ||= new Map()).set(p.epoch, p.value);
      if (p.metric_type === "time/epoch_seconds" && p.timestamp) {
        lastEpochAt = Math.max(lastEpochAt || 0, Date.parse(p.timestamp));
      }
      lastId = Math.max(lastId, p.id);
    }
    root.dataset.lastId = String(lastId);
    // A backfill arrives in pages of 500: draw once after a burst, not once per page.
    if (!redrawTimer) redrawTimer = setTimeout(redraw, 50);
  }

  function redraw() {
    redrawTimer = null;
    for (const [id, metrics] of Object.entries(METRIC_CHARTS)) {
      if (!charts[id]) continue;
      charts[id].setData(align(metrics.map(([type]) => [...(values[type] || new Map())])));
    }
    renderProgress();
  }

  // Progress and the ETA ---------------------------------------------------------------------------

  // When the run should end (ms), from the mean of the last epochs' durations and the epochs left,
  // counted from the end of the newest epoch; null when there is nothing to estimate from.
  function deadline() {
    const seconds = values["time/epoch_seconds"];
    const left = state.progress_total - state.progress_epoch;
    if (state.status !== "running" || !seconds || left <= 0 || lastEpochAt == null) return null;
    const recent = [...seconds].sort((a, b) => a[0] - b[0]).slice(-ETA_EPOCHS).map(([, v]) => v).filter((v) => v != null);
    if (!recent.length) return null;
    // The server stamped the epoch; a browser clock behind the server's must not start the count
    // later than now.
    const from = Math.min(lastEpochAt, Date.now());
    return from + (left * 1000 * recent.reduce((a, b) => a + b, 0)) / recent.length;
  }

  function eta() {
    const end = deadline();
    if (end == null) return "";
    const total = Math.ceil((end - Date.now()) / 1000);
    if (total <= 0) return "ETA: any moment now";
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    return "ETA " + (h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`);
  }

  function renderProgress() {
    const bar = document.getElementById("progress-bar");
    const text = document.getElementById("progress-text");
    const etaEl = document.getElementById("progress-eta");
    const { progress_epoch: epoch, progress_total: total } = state;
    if (bar) {
      bar.hidden = !total;
      bar.max = total || 1;
      bar.value = epoch;
      bar.setAttribute("aria-label", `Epoch ${epoch} of ${total}`);
    }
    if (text) text.textContent = total ? `${epoch}/${total}` : "—";
    if (etaEl) etaEl.textContent = eta();
  }

  // The ETA counts down between epochs.
  setInterval(() => {
    const etaEl = document.getElementById("progress-eta");
    if (etaEl) etaEl.textContent = eta();
  }, 1000);

  // Status and the live part -------------------------------------------------------------------------

  function renderStatus(message) {
    const moved = message.status !== state.status || message.progress_epoch !== state.progress_epoch ||
      message.progress_total !== state.progress_total;
    state = message;
    root.dataset.status = state.status;
    const badge = document.getElementById("status-badge");
    if (badge) {
      badge.className = `status status-${state.status}`;
      badge.textContent = state.status.charAt(0).toUpperCase() + state.status.slice(1);
    }
    renderProgress();
    if (moved) refreshPart();
  }

  let fetching = null;  // the fetch in flight, if any
  let again = false;  // the session moved while it was in flight: fetch once more after it
  let loggedOut = false;

  async function fetchPart() {
    const response = await fetch(root.dataset.partUrl, { credentials: "same-origin" });
    // Logged out: the login page answers instead (a redirect). Keep the page as it is.
    if (!response.ok || response.redirected) {
      loggedOut = response.redirected;
      return;
    }
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const id of PARTS) {
      const now = document.getElementById(id);
      const next = fresh.getElementById(id);
      if (now && next) now.replaceWith(next);
    }
    renderProgress();
  }

  function refreshPart() {
    if (loggedOut) return;
    if (fetching) {
      again = true;
      return;
    }
    fetching = fetchPart()
      .catch((error) => console.warn("refreshing the session failed", error))
      .finally(() => {
        fetching = null;
        if (again) {
          again = false;
          refreshPart();
        }
      });
  }

  setInterval(() => {
    if (state.status === "running" && !document.hidden) refreshPart();
  }, REFRESH_MS);

  // Resources and alerts -------------------------------------------------------------------------

  function addSample(sample) {
    if (sample.id <= lastSampleId) return;
    lastSampleId = sample.id;
    samples.push(sample);
    if (samples.length > RESOURCE_SAMPLES) samples.splice(0, samples.length - RESOURCE_SAMPLES);
    drawResources();
  }

  function drawResources() {
    const xs = samples.map((s) => Date.parse(s.recorded_at) / 1000);
    if (cpuChart) cpuChart.setData([xs, samples.map((s) => s.cpu_percent), samples.map((s) => s.gpu_percent)]);
    if (memChart) memChart.setData([xs, samples.map((s) => s.memory_mb), samples.map((s) => s.gpu_memory_mb)]);
  }

  // An absolute path's directories, as sessions.presenters.without_paths cuts them: an alert's message
  // (a failure's last line) may name a server file, which a user does not see.
  const SERVER_PATH = /(?<![\w.~\/:])\/(?:[^\s\/'"<>:,;()\[\]]+\/)+/g;
  const seenAlerts = new Set();
  function addAlert(alert) {
    const box = document.getElementById("alerts");
    if (!box || seenAlerts.has(alert.id)) return;
    seenAlerts.add(alert.id);
    const item = document.createElement("li");
    item.className = `alert alert-${alert.severity || "info"}`;
    const when = alert.created_at ? new Date(alert.created_at).toLocaleTimeString() : "";
    const message = (alert.message || "").replace(SERVER_PATH, "");
    item.textContent = `${when} ${alert.kind ? "[" + alert.kind + "] " : ""}${message}`.trim();
    box.querySelector("ul").prepend(item);
    box.hidden = false;
  }

  // The socket -----------------------------------------------------------------------------------

  const connection = document.getElementById("live-state");
  function say(text) {
    if (connection) connection.textContent = text;
  }

  let failures = 0;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // after=<last id>, resources_after=<last sample id>: the server sends what came since, then the live
    // tail (no gaps, no duplicates).
    const socket = new WebSocket(
      `${scheme}://${location.host}/ws/sessions/${sessionId}/?after=${lastId}&resources_after=${lastSampleId}`);
    // "live" once the server has subscribed this socket to the session's tail: its first status message
    // comes after that, and whatever commits from then on reaches this page.
    socket.onopen = () => say("connecting");
    socket.onmessage = (event) => {
      failures = 0;
      const message = JSON.parse(event.data);
      if (message.type === "metrics") addPoints(message.points);
      else if (message.type === "status") {
        renderStatus(message);
        say("live");
      }
      else if (message.type === "resource") addSample(message);
      else if (message.type === "alert") addAlert(message);
      else if (message.type === "error") say(message.error);
      // Other types are newer than this page: ignored.
    };
    socket.onclose = (event) => {
      if (REFUSED[event.code]) return say(REFUSED[event.code]);
      // 1001: the server is restarting and said so; another process of it takes the connection now.
      // Only the first time in a row: a server that keeps going away gets the backoff.
      const delay = event.code === GOING_AWAY && failures === 0
        ? (failures++, 0) : Math.min(MAX_BACKOFF_MS, 1000 * 2 ** failures++);
      say(`disconnected; reconnecting in ${Math.round(delay / 1000)} s`);
      setTimeout(connect, delay);
    };
  }

  drawResources();
  renderProgress();
  connect();
})();
