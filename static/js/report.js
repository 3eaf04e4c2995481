// The report page: the equity curve against the benchmark and the drawdowns, drawn interactively in
// place of the server's SVG (which stays the page's no-JavaScript fallback).
(function () {
  "use strict";

  const source = document.getElementById("report-curves");
  if (!source || !window.uPlot || !window.TMCharts) return;
  const { lineChart, percent, money } = window.TMCharts;
  const curves = JSON.parse(source.textContent);

  for (const el of document.querySelectorAll(".report-chart")) {
    const curve = curves[el.dataset.curve];
    if (!curve || !curve.dates.length) continue;
    // Dates on a time axis; bar labels that are not dates (an intraday index) fall back to their position.
    const times = curve.dates.map((d) => Date.parse(d) / 1000);
    const isTime = times.every((t) => Number.isFinite(t));
    const chart = lineChart(el, {
      time: isTime,
      xLabel: "bar",
      height: el.dataset.curve === "drawdown" ? 160 : 240,
      yFormat: el.dataset.format === "percent" ? percent : money,
      series: [{ label: "Strategy", color: "#0b5cad" }, { label: curves.benchmark_label, color: "#8a8f98" }],
    });
    chart.setData([isTime ? times : curve.dates.map((_, i) => i), curve.strategy, curve.benchmark]);
  }
})();
