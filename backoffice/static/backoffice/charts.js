// Plotly charts of the back office (the dashboard and the panels of change pages), drawn from JSON
// the page embeds: no inline script. Axes make room for their labels (automargin) and follow the
// theme's light or dark mode.
(function () {
  "use strict";
  var dark = function () { return document.documentElement.classList.contains("dark"); };

  function layout(title, extra) {
    var ink = dark() ? "#d1d5db" : "#374151";
    var grid = dark() ? "#374151" : "#e5e7eb";
    var axis = { automargin: true, gridcolor: grid, zerolinecolor: grid, tickfont: { size: 11 } };
    return Object.assign({
      title: { text: title || "", font: { size: 14 }, x: 0, xanchor: "left" },
      margin: { t: title ? 56 : 28, r: 28, b: 16, l: 16 },
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: ink, family: "system-ui, sans-serif", size: 12 },
      xaxis: Object.assign({}, axis), yaxis: Object.assign({}, axis)
    }, extra || {});
  }

  var config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function draw(id, data, title, extra) {
    if (typeof Plotly === "undefined" || !document.getElementById(id)) { return; }
    var merged = layout(title, extra);
    ["xaxis", "yaxis", "yaxis2"].forEach(function (name) {
      if (extra && extra[name]) { merged[name] = Object.assign(layout()[name] || {}, extra[name]); }
    });
    var element = document.getElementById(id);
    Plotly.newPlot(element, data, merged, config);
    // The theme shows the page only once Alpine.js has started (x-cloak): a chart drawn before
    // takes Plotly's default width. Fit it whenever its box changes size (also the sidebar's toggle).
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        if (element.clientWidth) { Plotly.Plots.resize(element); }
      }).observe(element);
    }
  }

  window.CelaestCharts = { layout: layout, config: config, draw: draw };

  var source = document.getElementById("celaest-panel-charts");
  if (source) {
    JSON.parse(source.textContent).forEach(function (chart) {
      draw(chart.id, chart.data, chart.title, chart.layout);
    });
  }
})();
