// A deployment's page, live: one WebSocket (/ws/deployments/<id>/, protocol in trading/consumers.py)
// feeds the figures, the positions and open orders (from each status message), the equity chart, and
// the fills, orders, events and risk decisions (from their feeds). When the status moves, the page
// fetches its actions as the server renders them (?part=actions), so the buttons are always the ones it offers.
// The page works without any of this (it is server-rendered); this only keeps it current. Numbers print
// as templates/trading/format.html prints them.
(function () {
  "use strict";

  const root = document.getElementById("deployment");
  if (!root) return;

  const deploymentId = root.dataset.deploymentId;
  const REFUSED = { 4400: "bad request", 4401: "logged out: reload the page to log in", 4404: "deployment not found" };
  const MAX_BACKOFF_MS = 30000;
  const GOING_AWAY = 1001;
  const ROWS_SHOWN = 20;
  const EVENTS_SHOWN = 50;
  const REFUSALS_SHOWN = 5;
  const OPEN = new Set(JSON.parse(document.getElementById("open-statuses").textContent));

  // Numbers, as format.html prints them --------------------------------------------------------------

  const fmt = {
    money: (v) => (v == null ? "—" : v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })),
    signed: (v) => (v == null ? "—" : (v >= 0 ? "+" : "") + fmt.money(v)),
    percent: (v) => (v == null ? "—" : (v * 100).toFixed(2) + "%"),
    number: (v) => (v == null ? "—" : v.toLocaleString("en-US", { maximumFractionDigits: 6 })),
  };

  function cell(text, numeric) {
    const td = document.createElement("td");
    if (numeric) td.className = "num";
    td.textContent = text;
    return td;
  }

  function row(cells, data) {
    const tr = document.createElement("tr");
    for (const [key, value] of Object.entries(data || {})) tr.dataset[key] = value;
    for (const td of cells) tr.append(td);
    return tr;
  }

  function positionRow(p) {
    return row([cell(p.symbol), cell(fmt.number(p.quantity), true), cell(fmt.number(p.last_price), true),
      cell(fmt.money(p.value), true)], { symbol: p.symbol });
  }

  function orderRow(o) {
    const status = cell("");
    const badge = document.createElement("span");
    badge.className = `order-status order-${o.status}`;
    badge.textContent = o.status.replace(/_/g, " ");
    status.append(badge);
    if (o.reason) {
      const why = document.createElement("span");
      why.className = "muted";
      why.textContent = o.reason;
      status.append(" ", why);
    }
    return row([cell(String(o.id), true), cell(o.bar_time), cell(o.side), cell(o.symbol), cell(fmt.number(o.quantity), true),
      cell(fmt.number(o.filled_quantity), true), cell(fmt.number(o.average_price), true), status],
    { id: o.id, status: o.status });
  }

  function fillRow(x) {
    return row([cell(String(x.id), true), cell(x.time), cell(x.side), cell(x.symbol), cell(fmt.number(x.quantity), true),
      cell(fmt.number(x.price), true), cell(fmt.money(x.fee), true)], { id: x.id });
  }

  // A table's body: its "no ... yet" row (first, from the server), shown only when `rows` is empty, then
  // `rows` drawn.
  function fill(tableId, rows, draw) {
    const body = document.querySelector(`#${tableId} tbody`);
    const empty = body.querySelector("tr.empty");
    empty.hidden = rows.length > 0;
    body.replaceChildren(empty, ...rows.map(draw));
  }

  // Status: the figures, positions and open orders ------------------------------------------------------

  function text(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  let status = root.dataset.status;

  function renderStatus(s) {
    const moved = s.status !== status;
    status = s.status;
    root.dataset.status = s.status;
    root.dataset.lastBar = s.last_bar == null ? "" : String(s.last_bar);
    root.dataset.barsDone = String(s.bars_done);
    const badge = document.getElementById("status-badge");
    if (badge) {
      badge.className = `status status-${s.status}`;
      badge.textContent = s.status.charAt(0).toUpperCase() + s.status.slice(1);
    }
    text("fig-equity", fmt.money(s.equity));
    text("fig-cash", fmt.money(s.cash));
    text("fig-pnl", fmt.signed(s.pnl));
    text("fig-pnl-today", fmt.signed(s.pnl_today));
    text("fig-drawdown", fmt.percent(s.drawdown));
    text("fig-last-bar", s.last_bar == null ? "—" : `${s.last_bar_time} (bar ${s.last_bar})`);
    text("fig-bars", String(s.bars_done));
    if (s.heartbeat_at) text("fig-heartbeat", s.heartbeat_at.slice(0, 19).replace("T", " "));
    fill("positions", s.positions, positionRow);
    fill("open-orders", s.open_orders, orderRow);
    if (moved) refreshActions();
  }

  let fetching = null;
  let again = false;
  async function fetchActions() {
    const response = await fetch(root.dataset.partUrl, { credentials: "same-origin" });
    if (!response.ok || response.redirected) return;  // logged out: keep the page as it is
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const id of ["actions", "why"]) {
      const now = document.getElementById(id);
      const next = fresh.getElementById(id);
      if (now && next) now.replaceWith(next);
    }
  }

  function refreshActions() {
    if (fetching) {
      again = true;
      return;
    }
    fetching = fetchActions()
      .catch((error) => console.warn("refreshing the actions failed", error))
      .finally(() => {
        fetching = null;
        if (again) {
          again = false;
          refreshActions();
        }
      });
  }

  // Equity: the chart --------------------------------------------------------------------------------

  const equity = new Map();  // bar index -> [equity, benchmark]
  const chartEl = document.getElementById("chart-equity");
  const chart = chartEl && window.uPlot && window.TMCharts && window.TMCharts.lineChart(chartEl, {
    xLabel: "bar", yFormat: window.TMCharts.money, height: 240,
    series: [{ label: "equity" }, { label: "benchmark", color: "#8a8f98", dash: [4, 3] }],
  });
  let redrawTimer = null;
  const cursors = {
    equity: +root.dataset.equityAfter, orders: +root.dataset.ordersAfter, fills: +root.dataset.fillsAfter,
    events: +root.dataset.eventsAfter, decisions: +root.dataset.decisionsAfter,
  };

  function addPoints(points) {
    for (const p of points) {
      equity.set(p.bar_index, [p.equity, p.benchmark]);
      cursors.equity = Math.max(cursors.equity, p.id);
    }
    root.dataset.equityPoints = String(equity.size);
    const empty = document.getElementById("chart-empty");
    if (empty && equity.size) empty.hidden = true;
    // A history arrives in pages of 500: draw once after a burst.
    if (!redrawTimer) redrawTimer = setTimeout(redraw, 50);
  }

  function redraw() {
    redrawTimer = null;
    if (!chart) return;
    const bars = [...equity.keys()].sort((a, b) => a - b);
    chart.setData([bars, bars.map((b) => equity.get(b)[0]), bars.map((b) => equity.get(b)[1])]);
  }

  // Orders, fills, events --------------------------------------------------------------------------

  // Every order this page holds, by id: a message for an order it has is that order's new state.
  const orders = new Map(JSON.parse(document.getElementById("orders-known").textContent).map((o) => [o.id, o]));

  function addOrder(o) {
    orders.set(o.id, o);
    cursors.orders = Math.max(cursors.orders, o.id);
    const ids = [...orders.keys()].sort((a, b) => b - a);
    // Keep the newest shown and any still open (they may change), forget the rest.
    for (const id of ids.slice(ROWS_SHOWN)) if (!OPEN.has(orders.get(id).status)) orders.delete(id);
    fill("orders", ids.slice(0, ROWS_SHOWN).map((id) => orders.get(id)), orderRow);
  }

  // Where the orders resume: before the oldest one held open, which may have changed meanwhile.
  function ordersAfter() {
    const open = [...orders.values()].filter((o) => OPEN.has(o.status)).map((o) => o.id);
    return open.length ? Math.min(...open) - 1 : cursors.orders;
  }

  function addFill(x) {
    if (x.id <= cursors.fills) return;
    cursors.fills = x.id;
    const body = document.querySelector("#fills tbody");
    const empty = body.querySelector("tr.empty");
    empty.hidden = true;
    empty.after(fillRow(x));
    while (body.rows.length > ROWS_SHOWN + 1) body.deleteRow(-1);
  }

  function addEvent(e) {
    if (e.id <= cursors.events) return;
    cursors.events = e.id;
    const box = document.getElementById("events");
    const item = document.createElement("li");
    item.dataset.id = e.id;
    item.className = `alert alert-${e.severity}`;
    const when = document.createElement("time");
    when.dateTime = e.created_at;
    when.textContent = e.created_at.slice(0, 19).replace("T", " ");
    item.append(when, " ");
    if (e.severity !== "info") {
      const strong = document.createElement("strong");
      strong.textContent = e.severity.toUpperCase();
      item.append(strong, " ");
    }
    item.append(e.message);
    const list = box.querySelector("ul");
    list.prepend(item);
    while (list.children.length > EVENTS_SHOWN) list.lastElementChild.remove();
    box.querySelector(".empty").hidden = true;
  }

  // Risk decisions: the table (newest first) and the latest refusals, as templates/risk/decisions.html
  // draws them.

  function verdict(d) {
    const td = cell("");
    const badge = document.createElement(d.approved ? "span" : "strong");
    badge.className = `order-status ${d.approved ? "order-filled" : "order-rejected"}`;
    badge.textContent = d.approved ? "approved" : (d.code || "refused");
    td.append(badge);
    return td;
  }

  function decisionRow(d) {
    const tr = row([cell(String(d.id), true), cell(String(d.bar_index), true), cell(d.side), cell(d.symbol),
      cell(fmt.number(d.quantity), true), verdict(d), cell(d.message)], { id: d.id, approved: String(d.approved) });
    if (!d.approved) tr.className = "refused";
    return tr;
  }

  function refusalItem(d) {
    const item = document.createElement("li");
    item.dataset.id = d.id;
    item.className = "alert alert-error";
    const when = document.createElement("time");
    when.dateTime = d.created_at;
    when.textContent = d.created_at.slice(0, 19).replace("T", " ");
    const code = document.createElement("strong");
    code.textContent = d.code || "refused";
    item.append(when, ` bar ${d.bar_index} · ${d.side} ${fmt.number(d.quantity)} ${d.symbol}: `, code, " ", d.message);
    return item;
  }

  function addDecision(d) {
    if (d.id <= cursors.decisions) return;
    cursors.decisions = d.id;
    const body = document.querySelector("#decisions tbody");
    if (body) {
      const empty = body.querySelector("tr.empty");
      empty.hidden = true;
      empty.after(decisionRow(d));
      while (body.rows.length > ROWS_SHOWN + 1) body.deleteRow(-1);
    }
    const box = document.getElementById("refusals");
    if (box && !d.approved) {
      const list = box.querySelector("ul");
      list.prepend(refusalItem(d));
      while (list.children.length > REFUSALS_SHOWN) list.lastElementChild.remove();
      box.querySelector(".empty").hidden = true;
    }
  }

  // The socket -----------------------------------------------------------------------------------

  function say(words) {
    text("live-state", words);
  }

  let failures = 0;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = `equity_after=${cursors.equity}&orders_after=${ordersAfter()}&fills_after=${cursors.fills}` +
      `&events_after=${cursors.events}&decisions_after=${cursors.decisions}`;
    const socket = new WebSocket(`${scheme}://${location.host}/ws/deployments/${deploymentId}/?${query}`);
    socket.onopen = () => say("connecting");
    socket.onmessage = (event) => {
      failures = 0;
      const message = JSON.parse(event.data);
      if (message.type === "status") {
        renderStatus(message);
        say("live");
      } else if (message.type === "equity") addPoints(message.points);
      else if (message.type === "order") addOrder(message);
      else if (message.type === "fill") addFill(message);
      else if (message.type === "event") addEvent(message);
      else if (message.type === "decision") addDecision(message);
      else if (message.type === "error") say(message.error);
      // Other types are newer than this page: ignored.
    };
    socket.onclose = (event) => {
      if (REFUSED[event.code]) return say(REFUSED[event.code]);
      const delay = event.code === GOING_AWAY && failures === 0
        ? (failures++, 0) : Math.min(MAX_BACKOFF_MS, 1000 * 2 ** failures++);
      say(`disconnected; reconnecting in ${Math.round(delay / 1000)} s`);
      setTimeout(connect, delay);
    };
  }

  connect();
})();
