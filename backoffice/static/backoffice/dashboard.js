// Draws the staff dashboard's charts from the JSON the admin index embeds (no inline script).
(function () {
  "use strict";
  var source = document.getElementById("celaest-dashboard-data");
  if (!source || typeof Plotly === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var layout = function (title, extra) {
    return Object.assign({ title: { text: title, font: { size: 14 } }, margin: { t: 40, r: 20, b: 40, l: 50 },
      legend: { orientation: "h" } }, extra || {});
  };
  var config = { displaylogo: false, responsive: true };
  Plotly.newPlot("chart-tasks", [
    { x: data.tasks.x, y: data.tasks.tasks, type: "bar", name: "tasks" },
    { x: data.tasks.x, y: data.tasks.tokens, type: "scatter", name: "tokens", yaxis: "y2" },
    { x: data.tasks.x, y: data.tasks.cost, type: "scatter", name: "AI cost (USD)", yaxis: "y3", visible: "legendonly" }
  ], layout("AI tasks, tokens and cost per day", {
    yaxis2: { overlaying: "y", side: "right", showgrid: false },
    yaxis3: { overlaying: "y", side: "right", showgrid: false, visible: false }
  }), config);
  Plotly.newPlot("chart-roi", [
    { x: data.roi.x, y: data.roi.money_saved, type: "bar", name: "money saved" }
  ], layout("ROI by organization, this month"), config);
  Plotly.newPlot("chart-validations", [
    { x: data.validations.x, y: data.validations.valid, type: "bar", name: "valid" },
    { x: data.validations.x, y: data.validations.invalid, type: "bar", name: "refused" }
  ], layout("License validations per day", { barmode: "stack" }), config);
  Plotly.newPlot("chart-collisions", [
    { labels: data.collisions.x, values: data.collisions.open, type: "pie", hole: 0.4 }
  ], layout("Open collisions by severity"), config);
  Plotly.newPlot("chart-revenue", [
    { x: data.revenue.x, y: data.revenue.revenue, type: "bar", name: "revenue" }
  ], layout("Revenue per month"), config);
  Plotly.newPlot("chart-webhooks", [
    { x: data.webhooks.x, y: data.webhooks.succeeded, type: "bar", name: "succeeded" },
    { x: data.webhooks.x, y: data.webhooks.failed, type: "bar", name: "failed" },
    { x: data.webhooks.x, y: data.webhooks.pending, type: "bar", name: "pending" }
  ], layout("Webhook deliveries, last 7 days", { barmode: "stack" }), config);
})();
