// The session page, live: one WebSocket (/ws/sessions/<id>/, protocol in sessions/consumers.py) feeds
// the progress bar, the status badge, the action buttons, the metric and resource charts and the alerts.
// The page works without it (the tables below are server-rendered); this only keeps it current.
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
  const ETA_EPOCHS = 5;  // the ETA averages the last few epochs: the first ones include warm-up
  const RESOURCE_SAMPLES = 360;  // 30 min at the 5 s sampling rate

  const METRIC_CHARTS = {
    "chart-loss": [["train/loss", "loss"], ["train/policy_loss", "policy loss"], ["train/value_loss", "value loss"]],
    "chart-reward": [["train/reward", "train reward"]],
    "chart-return": [["eval/total_return", "valid total return"]],
    "chart-sharpe": [["eval/sharpe", "valid Sharpe"]],
  };
  const FORMATS = { "chart-return": percent };

  const values = {};  // metric type -> Map(epoch -> value); a re-run epoch's new rows replace its old ones
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

  // Progress, status, buttons --------------------------------------------------------------------

  function eta() {
    const seconds = values["time/epoch_seconds"];
    const left = state.progress_total - state.progress_epoch;
    if (state.status !== "running" || !seconds || left <= 0) return "";
    const recent = [...seconds].sort((a, b) => a[0] - b[0]).slice(-ETA_EPOCHS).map(([, v]) => v).filter((v) => v != null);
    if (!recent.length) return "";
    const total = Math.round((left * recent.reduce((a, b) => a + b, 0)) / recent.length);
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

  function renderStatus(message) {
    const changed = message.status !== state.status;
    state = message;
    const badge = document.getElementById("status-badge");
    if (badge) {
      badge.className = `status status-${state.status}`;
      badge.textContent = state.status.charAt(0).toUpperCase() + state.status.slice(1);
    }
    // The stream does not carry pause/stop requests, so the server's choice of actions (which knows
    // them) stands until the status itself moves.
    if (changed) {
      renderActions();
      for (const el of document.querySelectorAll(".request-note")) el.remove();
    }
    renderProgress();
  }

  // The actions each status allows (as templates/sessions/detail.html renders them); [path, label, class].
  function allowed(status, sessionType) {
    const actions = [];
    if (status === "running") actions.push(["pause", "Pause", ""]);
    if (status === "paused") actions.push(["resume", "Resume", "primary"]);
    if (!FINAL.has(status)) actions.push(["stop", "Stop", "danger"]);
    if (status === "completed" && sessionType === "training") actions.push(["backtest", "Backtest", ""]);
    return actions;
  }

  const toolbar = document.getElementById("actions");
  // The token of the page's own forms; the csrftoken cookie when the page had none.
  const csrfInput = toolbar && toolbar.querySelector("input[name=csrfmiddlewaretoken]");
  const csrf = csrfInput ? csrfInput.value : (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";

  function renderActions() {
    if (!toolbar) return;
    const base = toolbar.dataset.baseUrl;
    const forms = allowed(state.status, toolbar.dataset.type).map(([path, label, css]) => {
      const form = Object.assign(document.createElement("form"), { method: "post", action: `${base}${path}/` });
      const token = Object.assign(document.createElement("input"), { type: "hidden", name: "csrfmiddlewaretoken", value: csrf });
      const button = Object.assign(document.createElement("button"), { type: "submit", textContent: label, className: css });
      form.append(token, button);
      return form;
    });
    const links = [...toolbar.querySelectorAll("a")];
    if (state.status === "completed" && !links.length) {
      // Whether a report exists is known for sure only by the server; a completed session usually has one.
      links.push(Object.assign(document.createElement("a"), { className: "button", href: `${base}report/`, textContent: "Report" }));
    }
    toolbar.replaceChildren(...forms, ...links);
  }

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

  const seenAlerts = new Set();
  function addAlert(alert) {
    const box = document.getElementById("alerts");
    if (!box || seenAlerts.has(alert.id)) return;
    seenAlerts.add(alert.id);
    const item = document.createElement("li");
    item.className = `alert alert-${alert.severity || "info"}`;
    const when = alert.created_at ? new Date(alert.created_at).toLocaleTimeString() : "";
    item.textContent = `${when} ${alert.kind ? "[" + alert.kind + "] " : ""}${alert.message || ""}`.trim();
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
      const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** failures++);
      say(`disconnected; reconnecting in ${Math.round(delay / 1000)} s`);
      setTimeout(connect, delay);
    };
  }

  drawResources();
  renderProgress();
  connect();
})();
