// The comparison page: one chart per metric, one line per session, from the page's own data
// (json_script "compare-data", built by sessions.views.session_compare_view).
(function () {
  "use strict";

  const source = document.getElementById("compare-data");
  if (!source || !window.uPlot || !window.TMCharts) return;
  const { lineChart, align, percent } = window.TMCharts;
  const data = JSON.parse(source.textContent);

  for (const el of document.querySelectorAll(".compare-chart")) {
    const bySession = data.series[el.dataset.metric] || {};
    const chart = lineChart(el, {
      series: data.sessions.map((s) => ({ label: s.label })),
      yFormat: el.dataset.format === "percent" ? percent : null,
    });
    chart.setData(align(data.sessions.map((s) => bySession[String(s.id)] || [])));
  }
})();
