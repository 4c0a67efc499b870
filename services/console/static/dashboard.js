// The district dashboard's charts, drawn with the vendored echarts.
// No inline script (CSP script-src 'self'): each chart's rows are a
// <script type="application/json"> block named by the chart's data-chart-source,
// [{label, values: {series: number}}], and this file draws them. Every chart has the
// same figures in a table beside it, for screen readers and keyboards.
(function () {
  "use strict";
  var COLOURS = ["#0b5cad", "#1e6b34", "#a4161a", "#7a4b00", "#5b2a86"];

  function rowsOf(el) {
    var source = document.getElementById(el.getAttribute("data-chart-source") || "");
    if (!source) { return []; }
    try { return JSON.parse(source.textContent || "[]"); } catch (e) { return []; }
  }

  function draw(el) {
    var rows = rowsOf(el);
    if (!rows.length || !window.echarts) { return; }
    var kind = el.getAttribute("data-chart-kind") === "line" ? "line" : "bar";
    var series = Object.keys(rows[0].values || {});
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      color: COLOURS,
      tooltip: { trigger: "axis" },
      legend: { data: series },
      grid: { containLabel: true, left: 8, right: 8, bottom: 8 },
      xAxis: { type: "category", data: rows.map(function (r) { return r.label; }),
               axisLabel: { interval: 0, rotate: rows.length > 6 ? 30 : 0 } },
      yAxis: { type: "value" },
      series: series.map(function (name) {
        return { name: name, type: kind,
                 data: rows.map(function (r) { return r.values[name]; }) };
      })
    });
    el.setAttribute("data-chart-drawn", "1");
    window.addEventListener("resize", function () { chart.resize(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart-source]").forEach(draw);
  });
})();
