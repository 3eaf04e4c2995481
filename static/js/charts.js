// Line charts over the vendored uPlot (static/vendor/uplot), shared by the session, comparison and
// report pages. Each chart's element carries data-points = the x values it has, so that a test (or a
// curious operator) can see a chart grow without reading the canvas.
//
// A chart with no value to show is not drawn: its figure stays hidden until the first point (a
// backtest has no training curves; a CPU-only run has no GPU line but its CPU one).
(function () {
  "use strict";

  const PALETTE = ["#0b5cad", "#c2410c", "#1a7f37", "#7c3aed", "#b42318", "#0e7490", "#9a6700", "#5b6570"];
  const MAX_WIDTH = 900;
  const MIN_WIDTH = 240;

  function widthOf(el) {
    return Math.max(MIN_WIDTH, Math.min(el.clientWidth || MAX_WIDTH, MAX_WIDTH));
  }

  // The y axis as wide as its longest label: a fixed width cut "1,000,000" to "000,000" and
  // "0.000045" to ".000045". (uPlot's own recipe: measure with the axis font; settle after two cycles.)
  function axisSize(u, values, axisIdx, cycleNum) {
    const axis = u.axes[axisIdx];
    if (cycleNum > 1) return axis._size;
    let size = axis.ticks.size + axis.gap;
    const longest = (values || []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), "");
    if (longest) {
      u.ctx.font = axis.font[0];
      size += u.ctx.measureText(longest).width / devicePixelRatio;
    }
    return Math.ceil(size) + 4;
  }

  // Tick labels with the fewest decimals that tell the ticks apart, with thousands separators: the
  // steps of a loss axis (0.000025) need six, an equity axis's (50,000) none. Scientific notation for
  // what six decimals cannot show.
  function ticks(u, values) {
    const step = values.length > 1 ? Math.abs(values[1] - values[0]) : Math.abs(values[0] || 1);
    if (step > 0 && step < 1e-6) return values.map((v) => (v === 0 ? "0" : v.toExponential(1)));
    const whole = (d) => Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) <= 1e-6;
    let decimals = 0;
    while (decimals < 6 && step > 0 && !whole(decimals)) decimals++;
    return values.map((v) => v.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals }));
  }

  // The y range: uPlot's, but a flat series (a drawdown that stays at 0) gets a narrow band around its
  // value rather than 0..100, which would print as 0% to 10,000%.
  function yRange(u, min, max) {
    if (min == null || max == null) return [0, 1];
    if (min === max) {
      const pad = Math.abs(min) * 0.01 || 0.01;
      return [min - pad, max + pad];
    }
    return uPlot.rangeNum(min, max, 0.1, true);
  }

  function hasValues(columns) {
    return columns.slice(1).some((column) => column.some((v) => v != null && Number.isFinite(v)));
  }

  // series: [{label, color?, dash?}]; time: x in unix seconds (else epochs); yFormat: number -> text.
  function lineChart(el, { series, time = false, height = 200, yFormat = null, xLabel = "epoch" }) {
    const figure = el.closest("figure");
    const show = (v) => (v == null ? "—" : yFormat ? yFormat(v) : String(+v.toPrecision(6)));
    const opts = {
      width: widthOf(el),
      height,
      scales: { x: { time }, y: { range: yRange } },
      legend: { live: true },
      series: [{ label: time ? "time" : xLabel }].concat(series.map((s, i) => ({
        label: s.label,
        stroke: s.color || PALETTE[i % PALETTE.length],
        dash: s.dash,
        width: 1.5,
        value: (u, v) => show(v),
      }))),
      axes: [
        // Epochs are whole numbers: no ticks between them.
        time ? {} : { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] },
        // A format (money, percent) prints the ticks as it prints the values; else `ticks`.
        { size: axisSize, values: yFormat ? (u, vals) => vals.map(show) : ticks },
      ],
    };
    let plot = null;
    el.dataset.points = "0";
    if (figure) figure.hidden = true;

    function draw(columns) {
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
    }

    return {
      get plot() { return plot; },
      setData(columns) {
        el.dataset.points = String(columns[0].length);
        if (!plot && !hasValues(columns)) return;  // nothing to draw yet
        if (!plot) {
          if (figure) figure.hidden = false;
          el.textContent = "";  // the no-JS fallback, if any, gives way to the chart
          opts.width = widthOf(el);  // measured now that the figure shows
          plot = new uPlot(opts, [[]].concat(series.map(() => [])), el);
          // uPlot draws at a fixed size; follow the page's width.
          window.addEventListener("resize", () => plot.setSize({ width: widthOf(el), height }));
        }
        draw(columns);
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

  function money(v) {
    return v.toLocaleString("en-US", { maximumFractionDigits: 0 });
  }

  window.TMCharts = { lineChart, align, percent, money, PALETTE };
})();
