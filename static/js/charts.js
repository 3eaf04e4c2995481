// Line charts over the vendored uPlot (static/vendor/uplot), shared by the session, comparison and
// report pages. Each chart's element carries data-points = the x values drawn, so that a test (or a
// curious operator) can see a chart grow without reading the canvas.
(function () {
  "use strict";

  const PALETTE = ["#0b5cad", "#c2410c", "#1a7f37", "#7c3aed", "#b42318", "#0e7490", "#9a6700", "#5b6570"];
  const MAX_WIDTH = 900;

  function widthOf(el) {
    return Math.max(280, Math.min(el.clientWidth || MAX_WIDTH, MAX_WIDTH));
  }

  // series: [{label, color?, dash?}]; time: x in unix seconds (else epochs); yFormat: number -> text.
  function lineChart(el, { series, time = false, height = 200, yFormat = null, xLabel = "epoch" }) {
    const show = (v) => (v == null ? "—" : yFormat ? yFormat(v) : +v.toPrecision(6));
    const opts = {
      width: widthOf(el),
      height,
      scales: { x: { time } },
      legend: { live: true },
      series: [{ label: time ? "time" : xLabel }].concat(series.map((s, i) => ({
        label: s.label,
        stroke: s.color || PALETTE[i % PALETTE.length],
        dash: s.dash,
        width: 1.5,
        value: (u, v) => show(v),
      }))),
      // Epochs are whole numbers: no ticks between them.
      axes: [time ? {} : { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] },
        { size: 64, values: (u, vals) => vals.map(show) }],
    };
    el.textContent = "";  // the no-JS fallback, if any, gives way to the chart
    const plot = new uPlot(opts, [[]].concat(series.map(() => [])), el);
    el.dataset.points = "0";
    // uPlot draws at a fixed size; follow the page's width.
    window.addEventListener("resize", () => plot.setSize({ width: widthOf(el), height }));
    return {
      plot,
      setData(columns) {
        const xs = columns[0];
        if (time && xs.length === 1) {
          // uPlot stretches a time axis with one sample over years: show a minute either side instead.
          plot.batch(() => {
            plot.setData(columns, false);
            plot.setScale("x", { min: xs[0] - 60, max: xs[0] + 60 });
          });
        } else {
          plot.setData(columns);
        }
        el.dataset.points = String(columns[0].length);
      },
    };
  }

  // [[x, y], ...] per series -> uPlot's columns: the sorted union of the xs, null where a series has none.
  function align(seriesPoints) {
    const xs = [...new Set(seriesPoints.flatMap((points) => points.map((p) => p[0])))].sort((a, b) => a - b);
    const columns = seriesPoints.map((points) => {
      const byX = new Map(points);
      return xs.map((x) => (byX.has(x) ? byX.get(x) : null));
    });
    return [xs].concat(columns);
  }

  function percent(v) {
    return (v * 100).toFixed(Math.abs(v) < 0.1 ? 2 : 1) + "%";
  }

  window.TMCharts = { lineChart, align, percent, PALETTE };
})();
