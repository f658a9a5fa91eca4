// mtasts web: draws the charts from the data-* attributes the server rendered.
// No inline script anywhere (CSP script-src 'self'); pages work without this file.
(function () {
  "use strict";
  var GREEN = "#2e7d32", RED = "#c62828";
  var FAILURE_COLORS = ["#c62828", "#ef6c00", "#6a1b9a", "#ad1457", "#f9a825", "#4e342e",
    "#283593", "#00838f", "#9e9d24", "#546e7a"];
  document.documentElement.classList.add("js");

  function drawSessions(canvas) {
    var spec = JSON.parse(canvas.dataset.chart);
    var colors = canvas.dataset.colors === "failures" ? FAILURE_COLORS : [GREEN, RED];
    var old = window.Chart.getChart(canvas);
    if (old) { old.destroy(); }
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: spec.labels,
        datasets: spec.series.map(function (s, i) {
          return { label: s.label, data: s.data, backgroundColor: colors[i % colors.length], stack: "s" };
        })
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: { x: { stacked: true, ticks: { maxTicksLimit: 12 } }, y: { stacked: true, beginAtZero: true } }
      }
    });
  }

  function drawSpark(canvas) {
    var values = JSON.parse(canvas.dataset.spark);
    var old = window.Chart.getChart(canvas);
    if (old) { old.destroy(); }
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: values.map(function (_, i) { return i; }),
        datasets: [{ data: values, borderColor: RED, backgroundColor: "rgba(198,40,40,0.15)", fill: true, borderWidth: 1.5, pointRadius: 0, spanGaps: true }]
      },
      options: {
        animation: false,
        responsive: false,
        events: [],
        plugins: { legend: { display: false }, tooltip: { enabled: false } },
        scales: { x: { display: false }, y: { display: false, min: 0, suggestedMax: 5 } }
      }
    });
  }

  function drawAll(root) {
    if (!window.Chart) { return; }
    root.querySelectorAll("canvas[data-chart]").forEach(drawSessions);
    // the charts show what the per-day table says: fold the table away
    root.querySelectorAll("details.nojs-table[open]").forEach(function (d) { d.open = false; });
    root.querySelectorAll("canvas[data-spark]").forEach(drawSpark);
  }

  if (window.htmx) {
    window.htmx.onLoad(drawAll);
  } else {
    document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  }
})();
