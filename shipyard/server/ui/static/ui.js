/* Shipyard UI: progressive enhancement for server-rendered pages (no inline script anywhere).
 *
 * - runs table: "select all" and a live count of the runs ticked for comparison;
 * - charts: every <figure data-chart> is drawn with uPlot from a JSON endpoint (data-src) or
 *   from data in its data-points attribute; the x-axis select redraws charts in place.
 * Failures are written into the figure, never thrown, so a page stays usable.
 */
(function () {
  "use strict";

  var PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
                 "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
  var AXIS_LABELS = {step: "step", time: "time", relative: "seconds since start"};
  var charts = [];

  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  function currentAxis() {
    var sel = document.querySelector("select[data-axis]");
    return sel ? sel.value : "step";
  }

  function note(fig, text) {
    var el = fig.querySelector("[data-chart-note]");
    if (el) { el.textContent = text; }
  }

  function plotSize(fig) {
    var box = fig.querySelector(".plot");
    var width = Math.max(240, Math.floor(box.clientWidth || fig.clientWidth || 480));
    return {width: width, height: fig.classList.contains("profile") ? 160 : 220};
  }

  function draw(fig, opts, data) {
    var box = fig.querySelector(".plot");
    if (fig._plot) { fig._plot.destroy(); }
    box.textContent = "";
    var size = plotSize(fig);
    opts.width = size.width;
    opts.height = size.height;
    fig._plot = new uPlot(opts, data, box);
  }

  function fail(fig, message) {
    var box = fig.querySelector(".plot");
    box.textContent = "";
    var p = document.createElement("p");
    p.className = "error";
    p.textContent = message;
    box.appendChild(p);
  }

  function fetchJson(url) {
    return fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body.message || ("HTTP " + r.status)); }
          return body;
        });
      });
  }

  function withParams(src, axis, points) {
    return src + (src.indexOf("?") >= 0 ? "&" : "?") + "x=" + encodeURIComponent(axis) +
      "&points=" + points;
  }

  function xAxis(axis) {
    return {scale: "x", label: AXIS_LABELS[axis] || axis};
  }

  function drawSeries(fig) {
    var axis = currentAxis();
    var points = Math.min(20000, plotSize(fig).width * 2);
    fetchJson(withParams(fig.dataset.src, axis, points)).then(function (d) {
      note(fig, d.downsampled ? "(" + d.shown.toLocaleString() + " of " + d.total.toLocaleString() + " points)"
                              : "(" + d.total.toLocaleString() + (d.total === 1 ? " point)" : " points)"));
      draw(fig, {
        scales: {x: {time: axis === "time"}},
        axes: [xAxis(axis), {}],
        legend: {live: true},
        series: [{label: AXIS_LABELS[axis]}, {label: fig.dataset.label, stroke: PALETTE[0], width: 1.5}]
      }, [d.x, d.y]);
    }).catch(function (e) { fail(fig, "Could not load the chart: " + e.message); });
  }

  function counted(n, plural) {
    return n + " " + (n === 1 ? plural.replace(/s$/, "") : plural);
  }

  function drawOverlay(fig) {
    var axis = fig.dataset.axis || currentAxis();
    var points = Math.min(20000, plotSize(fig).width * 2);
    fetchJson(withParams(fig.dataset.src, axis, points)).then(function (d) {
      if (!d.series.length) { fail(fig, "Nothing to draw for " + d.key + "."); return; }
      var data = uPlot.join(d.series.map(function (s) { return [s.x, s.y]; }));
      // A series with its own unit (latency in ms next to an error rate) goes on a second
      // scale with its axis on the right, so neither is flattened against the other.
      var scaled = d.series.filter(function (s) { return s.scale; });
      var second = scaled.length && scaled.length < d.series.length ? scaled[0].scale : null;
      var series = [{label: AXIS_LABELS[axis]}].concat(d.series.map(function (s, i) {
        var one = {label: s.name, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true};
        if (second && s.scale === second) { one.scale = second; one.label = s.name + " (" + second + ", right axis)"; }
        return one;
      }));
      var axes = [xAxis(axis), {}];
      if (second) { axes.push({scale: second, side: 1, label: second, grid: {show: false}}); }
      note(fig, "(" + counted(d.series.length, fig.dataset.unit || "runs") + ")");
      draw(fig, {scales: {x: {time: axis === "time"}}, axes: axes, series: series}, data);
    }).catch(function (e) { fail(fig, "Could not load the chart: " + e.message); });
  }

  function drawScatter(fig) {
    var d = JSON.parse(fig.dataset.points);
    if (!d.x.length) { fail(fig, "No run has both " + d.param + " and " + d.metric + "."); return; }
    var cats = d.categories;
    draw(fig, {
      mode: 1,
      scales: {x: {time: false, range: function (u, lo, hi) {
        var pad = (hi - lo) * 0.05 || 1; return [lo - pad, hi + pad]; }}},
      axes: [{label: d.param, values: cats.length ? function (u, vals) {
        return vals.map(function (v) { return Number.isInteger(v) && cats[v] !== undefined ? cats[v] : ""; });
      } : function (u, vals) {
        return vals.map(function (v) { return String(+v.toPrecision(4)); });
      }}, {label: d.metric}],
      cursor: {points: {size: 10}},
      series: [{label: d.param}, {label: d.metric, stroke: PALETTE[0], fill: PALETTE[0],
        paths: function () { return null; }, points: {show: true, size: 8, fill: PALETTE[0]}}]
    }, [d.x, d.y]);
  }

  // Bars centred on x: the x scale reaches half a bar beyond the first and last centre, so the
  // outer bars are drawn whole; category axes tick on whole numbers only (one label a bar).
  function barScale(xs) {
    var half = xs.length > 1 ? (xs[1] - xs[0]) / 2 : 0.5;
    return {time: false, range: function () { return [xs[0] - half, xs[xs.length - 1] + half]; }};
  }

  function barAxis(labels) {
    if (!labels.length) { return {}; }
    return {incrs: [1, 2, 5, 10, 20, 50], values: function (u, vals) {
      return vals.map(function (v) { return labels[v] === undefined ? "" : String(labels[v]).slice(0, 12); });
    }};
  }

  var ZERO_BASED = {range: function (u, lo, hi) { return [0, hi > 0 ? hi * 1.05 : 1]; }};

  function drawBars(fig) {
    var d = JSON.parse(fig.dataset.points);
    if (!d.x.length) { fail(fig, "No distribution to show for this column."); return; }
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({size: [0.9, 60]}) : undefined;
    draw(fig, {
      scales: {x: barScale(d.x), y: ZERO_BASED},
      axes: [barAxis(d.labels), {}],
      legend: {show: false},
      series: [{}, {label: fig.dataset.label, stroke: PALETTE[0], fill: "rgba(37,99,235,0.35)", paths: bars,
        points: {show: false}}]
    }, [d.x, d.y]);
  }

  function drawDistribution(fig) {
    var d = JSON.parse(fig.dataset.points);
    if (!d.x.length) { fail(fig, "No distribution to show for this column."); return; }
    var paths = uPlot.paths && uPlot.paths.bars;
    draw(fig, {
      scales: {x: barScale(d.x), y: ZERO_BASED},
      axes: [barAxis(d.labels), {label: "share of rows"}],
      series: [{label: d.labels.length ? "category" : "bin centre", value: d.labels.length ? function (u, v) {
        return v === null || d.labels[v] === undefined ? "--" : d.labels[v];
      } : undefined},
        {label: "reference", stroke: "#6b7280", fill: "rgba(107,114,128,0.35)",
        paths: paths ? paths({size: [0.45, 40], align: -1}) : undefined, points: {show: false}},
        {label: "current", stroke: PALETTE[0], fill: "rgba(37,99,235,0.45)",
        paths: paths ? paths({size: [0.45, 40], align: 1}) : undefined, points: {show: false}}]
    }, [d.x, d.reference, d.current]);
  }

  var DRAW = {series: drawSeries, overlay: drawOverlay, scatter: drawScatter, bars: drawBars,
              dist: drawDistribution};

  function drawAll(kinds) {
    charts.forEach(function (fig) {
      var kind = fig.dataset.chart;
      if (!kinds || kinds.indexOf(kind) >= 0) {
        try { DRAW[kind](fig); } catch (e) { fail(fig, "Could not draw the chart: " + e.message); }
      }
    });
  }

  function initCharts() {
    charts = $all("figure[data-chart]");
    if (!charts.length) { return; }
    if (typeof uPlot === "undefined") {
      charts.forEach(function (fig) { fail(fig, "The charting library did not load."); });
      return;
    }
    drawAll();
    var axis = document.querySelector("select[data-axis]");
    if (axis) {
      axis.addEventListener("change", function () {
        var url = new URL(window.location.href);
        url.searchParams.set("x", axis.value);
        window.history.replaceState(null, "", url.toString());
        drawAll(["series", "overlay"]);
      });
    }
    var pending = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(function () {
        charts.forEach(function (fig) {
          if (fig._plot) { fig._plot.setSize(plotSize(fig)); }
        });
      }, 150);
    });
  }

  function initSelection() {
    var all = document.querySelector("[data-select-all]");
    var boxes = $all("#runs-table tbody input[type=checkbox][name=runs]");
    var count = document.querySelector("[data-selected-count]");
    if (!boxes.length) { return; }
    function update() {
      var n = boxes.filter(function (b) { return b.checked; }).length;
      if (count) { count.textContent = n ? n + " selected" : "Tick 2 to 50 runs to compare them"; }
      if (all) { all.checked = n === boxes.length; all.indeterminate = n > 0 && n < boxes.length; }
    }
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (b) { b.checked = all.checked; });
        update();
      });
    }
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    initSelection();
    initCharts();
  });
}());
