// Draws the page's charts and submits the filters when one changes. Each
// <script type="application/json" data-chart="ID"> holds the Plotly figure of element ID
// (built on the server, starter/ingress/dashboard_charts.py); plotly.min.js, loaded
// before this file, comes from the same server.
"use strict";
for (const block of document.querySelectorAll("script[data-chart]")) {
  const figure = JSON.parse(block.textContent);
  Plotly.newPlot(block.dataset.chart, figure.data, figure.layout, {
    displayModeBar: false,
    responsive: true,
  });
}
for (const select of document.querySelectorAll("form.filters select")) {
  select.addEventListener("change", () => select.form.submit());
}
