// report.html's charts: reads the run model the coordinator embedded in
// <script id="loadgen-chart-data" type="application/json"> and draws them
// into <div id="charts"> with LoadgenCharts (charts.js). No network: the
// page carries uPlot, this file and the data. Marks <body data-charts="N">
// when done, so a test (and a reader) can tell the charts were drawn.
(function () {
  "use strict";
  function draw() {
    const root = document.getElementById("charts");
    const src = document.getElementById("loadgen-chart-data");
    if (!root || !src || !window.uPlot || !window.LoadgenCharts) return;
    let data;
    try {
      data = JSON.parse(src.textContent);
    } catch (e) {
      root.textContent = "chart data unreadable: " + e;
      return;
    }
    // A compare page carries its charts already in drawn form (`drawn`).
    const model = data.drawn ? data : window.LoadgenCharts.fromModel(data);
    const charts = window.LoadgenCharts.drawAll(root, model);
    document.body.dataset.charts = String(charts.length);
    const fallback = document.getElementById("static-charts");
    if (fallback && charts.length) fallback.hidden = true;
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
