// Draws the staff dashboard's charts from the JSON the admin index embeds (no inline script),
// with the back office's chart defaults (charts.js).
(function () {
  "use strict";
  var source = document.getElementById("celaest-dashboard-data");
  if (!source || typeof Plotly === "undefined" || !window.CelaestCharts) { return; }
  var data = JSON.parse(source.textContent);
  var draw = window.CelaestCharts.draw;
  var days = data.days + " days";
  // Severity colours mean something: red is serious, blue is benign.
  var SEVERITY_COLOURS = { low: "#3b82f6", medium: "#f59e0b", high: "#dc2626", critical: "#7f1d1d" };
  var GOOD = "#16a34a", BAD = "#dc2626", WAITING = "#94a3b8";

  draw("chart-tasks", [
    { x: data.tasks.x, y: data.tasks.tasks, type: "bar", name: "tasks" },
    { x: data.tasks.x, y: data.tasks.tokens, type: "scatter", name: "tokens", yaxis: "y2" },
    { x: data.tasks.x, y: data.tasks.cost, type: "scatter", name: "AI cost (USD)", yaxis: "y3", visible: "legendonly" }
  ], "AI tasks, tokens and cost per day, last " + days, {
    margin: { t: 56, r: 64, b: 16, l: 16 },
    yaxis: { title: { text: "tasks" } },
    yaxis2: { title: { text: "tokens" }, overlaying: "y", side: "right", showgrid: false, automargin: true },
    yaxis3: { overlaying: "y", side: "right", showgrid: false, visible: false }
  });
  draw("chart-roi", [
    { x: data.roi.x, y: data.roi.money_saved, type: "bar", name: "money saved", marker: { color: GOOD } }
  ], "Money saved by AI, by organization, this month (USD)", { yaxis: { title: { text: "USD" }, tickformat: ",.2f" } });
  draw("chart-validations", [
    { x: data.validations.x, y: data.validations.valid, type: "bar", name: "valid", marker: { color: GOOD } },
    { x: data.validations.x, y: data.validations.invalid, type: "bar", name: "refused", marker: { color: BAD } }
  ], "License validations per day, last " + days, { barmode: "stack", yaxis: { title: { text: "validations" } } });
  draw("chart-collisions", [
    { x: data.collisions.x, y: data.collisions.open, type: "bar", name: "open",
      marker: { color: data.collisions.x.map(function (s) { return SEVERITY_COLOURS[s] || WAITING; }) } }
  ], "Open collisions by severity", { yaxis: { title: { text: "collisions" }, dtick: 1 } });
  draw("chart-revenue", Object.keys(data.revenue.by_currency).map(function (currency) {
    return { x: data.revenue.x, y: data.revenue.by_currency[currency], type: "bar", name: currency };
  }), "Revenue per month, by currency", { yaxis: { title: { text: "revenue" }, tickformat: ",.2f" } });
  draw("chart-webhooks", [
    { x: data.webhooks.x, y: data.webhooks.succeeded, type: "bar", name: "succeeded", marker: { color: GOOD } },
    { x: data.webhooks.x, y: data.webhooks.failed, type: "bar", name: "failed", marker: { color: BAD } },
    { x: data.webhooks.x, y: data.webhooks.pending, type: "bar", name: "pending", marker: { color: WAITING } }
  ], "Webhook deliveries per day, last " + days, { barmode: "stack", yaxis: { title: { text: "deliveries" } } });
})();
