// Stacked bar charts drawn as inline SVG: one bar per run, one segment per
// series. Colours come from console.css (.series-<key>), so they follow the
// light or dark scheme; every bar has a <title> with its numbers for hover
// and for screen readers, and the figure carries a text summary.

import { h, s, uid } from "./dom.js";

const WIDTH = 720;
const HEIGHT = 240;
// Room on the left for the value labels and the axis title, below for the run labels and theirs.
const MARGIN = { top: 12, right: 12, bottom: 48, left: 78 };
const MAX_X_LABELS = 7;
const ZERO_MARK = 3;

/** Up to about five round ticks from 0 to at least `max`. */
export function niceTicks(max) {
  if (!(max > 0)) return [0, 1];
  const raw = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const residual = raw / magnitude;
  const step = (residual <= 1 ? 1 : residual <= 2 ? 2 : residual <= 5 ? 5 : 10) * magnitude;
  const ticks = [];
  for (let value = 0; value < max + step / 2; value += step) ticks.push(Number(value.toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

/**
 * stackedBars({title, description, series: [{key, label}], bars: [{label, name, values}],
 *              format: (n) => "1.2 s", yTitle, xTitle, zeroText, emptyText})
 * A bar whose total is zero is drawn as a short mark on the axis, so "nothing"
 * reads as a measured zero rather than a missing run.
 */
export function stackedBars({ title, description, series, bars, format, yTitle, xTitle, zeroText = "zero", emptyText }) {
  const titleId = uid("chart-title");
  const descId = uid("chart-desc");
  const figure = h("figure", { class: "chart" }, h("figcaption", { id: titleId }, title));
  if (!bars.length) {
    figure.append(h("p", { class: "muted" }, emptyText || "Nothing to show yet."));
    return figure;
  }
  const totals = bars.map((bar) => series.reduce((sum, { key }) => sum + (bar.values[key] || 0), 0));
  const ticks = niceTicks(Math.max(...totals));
  const top = ticks[ticks.length - 1] || 1;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (value) => MARGIN.top + plotHeight - (value / top) * plotHeight;
  const band = plotWidth / bars.length;
  const barWidth = Math.max(2, Math.min(40, band * 0.7));

  const svg = s("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-labelledby": `${titleId} ${descId}`,
    class: "chart-svg",
    preserveAspectRatio: "xMidYMid meet",
  });
  svg.append(s("desc", { id: descId }, description(totals)));

  const axis = s("g", { class: "axis", "aria-hidden": "true" });
  for (const tick of ticks) {
    axis.append(
      s("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(tick), y2: y(tick), class: "grid" }),
      s("text", { x: MARGIN.left - 6, y: y(tick) + 4, "text-anchor": "end" }, format(tick)),
    );
  }
  const every = Math.ceil(bars.length / MAX_X_LABELS);
  bars.forEach((bar, index) => {
    if (index % every !== 0 && index !== bars.length - 1) return;
    const x = MARGIN.left + band * index + band / 2;
    axis.append(s("text", { x, y: HEIGHT - MARGIN.bottom + 16, "text-anchor": "middle" }, bar.label));
  });
  if (yTitle) {
    const middle = MARGIN.top + plotHeight / 2;
    axis.append(
      s("text", { x: 14, y: middle, "text-anchor": "middle", transform: `rotate(-90 14 ${middle})`, class: "axis-title" }, yTitle),
    );
  }
  if (xTitle) {
    axis.append(
      s("text", { x: MARGIN.left + plotWidth / 2, y: HEIGHT - 6, "text-anchor": "middle", class: "axis-title" }, xTitle),
    );
  }
  axis.append(
    s("line", {
      x1: MARGIN.left,
      x2: WIDTH - MARGIN.right,
      y1: y(0),
      y2: y(0),
      class: "baseline",
    }),
  );
  svg.append(axis);

  bars.forEach((bar, index) => {
    const x = MARGIN.left + band * index + (band - barWidth) / 2;
    const parts = series
      .filter(({ key }) => bar.values[key] > 0)
      .map(({ key, label }) => `${label} ${format(bar.values[key])}`);
    const group = s(
      "g",
      { class: "bar" },
      s("title", {}, `${bar.name}: ${parts.join(", ") || zeroText} (total ${format(totals[index])})`),
    );
    if (totals[index] <= 0) {
      group.classList.add("zero");
      group.append(s("rect", { x, y: y(0) - ZERO_MARK, width: barWidth, height: ZERO_MARK, class: "zero-mark" }));
    }
    let base = 0;
    for (const { key } of series) {
      const value = bar.values[key] || 0;
      if (value <= 0) continue;
      const y0 = y(base);
      const y1 = y(base + value);
      group.append(
        s("rect", {
          x,
          y: y1,
          width: barWidth,
          height: Math.max(1, y0 - y1),
          class: `series-${key}`,
        }),
      );
      base += value;
    }
    svg.append(group);
  });
  figure.append(
    h("div", { class: "chart-frame" }, svg),
    h(
      "ul",
      { class: "legend", "aria-label": `${title}: legend` },
      series.map(({ key, label }) =>
        h("li", {}, h("span", { class: `swatch series-${key}`, "aria-hidden": "true" }), label),
      ),
    ),
  );
  return figure;
}
