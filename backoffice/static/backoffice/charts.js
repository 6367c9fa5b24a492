// Plotly charts of the back office (the dashboard and the panels of change pages), drawn from JSON
// the page embeds: no inline script. Axes make room for their labels (automargin) and follow the
// theme's light or dark mode, also when staff switch it.
(function () {
  "use strict";
  var drawn = [];
  var dark = function () { return document.documentElement.classList.contains("dark"); };
  var colours = function () {
    return dark() ? { ink: "#d1d5db", grid: "#374151" } : { ink: "#374151", grid: "#e5e7eb" };
  };

  function layout(title, extra) {
    var c = colours();
    var axis = { automargin: true, gridcolor: c.grid, zerolinecolor: c.grid, tickfont: { size: 11 } };
    return Object.assign({
      title: { text: title || "", font: { size: 14 }, x: 0, xanchor: "left" },
      margin: { t: title ? 56 : 28, r: 28, b: 16, l: 16 },
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: c.ink, family: "system-ui, sans-serif", size: 12 },
      xaxis: Object.assign({}, axis), yaxis: Object.assign({}, axis)
    }, extra || {});
  }

  var config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function draw(id, data, title, extra) {
    var element = document.getElementById(id);
    if (typeof Plotly === "undefined" || !element) { return; }
    var plotted = false;
    var plot = function () {
      var merged = layout(title, extra);
      ["xaxis", "yaxis", "yaxis2"].forEach(function (name) {
        if (extra && extra[name]) { merged[name] = Object.assign(layout()[name] || {}, extra[name]); }
      });
      Plotly.newPlot(element, data, merged, config);
      drawn.push(element);
      plotted = true;
    };
    // The theme shows the page only once Alpine.js has started (x-cloak): a chart drawn while
    // hidden takes Plotly's default width and the wrong colours. Draw it once its box has a size,
    // and fit it again whenever that changes (the sidebar's toggle, the window).
    if (!window.ResizeObserver) { plot(); return; }
    new ResizeObserver(function () {
      if (!element.clientWidth) { return; }
      if (plotted) { Plotly.Plots.resize(element); } else { plot(); }
    }).observe(element);
  }

  // The theme sets or clears the "dark" class on <html> after the charts are drawn, and when
  // staff switch modes: recolour the text and grids then.
  new MutationObserver(function () {
    var c = colours();
    drawn.forEach(function (element) {
      Plotly.relayout(element, {
        "font.color": c.ink, "xaxis.gridcolor": c.grid, "yaxis.gridcolor": c.grid,
        "xaxis.zerolinecolor": c.grid, "yaxis.zerolinecolor": c.grid
      });
    });
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });

  window.CelaestCharts = { layout: layout, config: config, draw: draw };

  var source = document.getElementById("celaest-panel-charts");
  if (source) {
    JSON.parse(source.textContent).forEach(function (chart) {
      draw(chart.id, chart.data, chart.title, chart.layout);
    });
  }
})();
