// Small SVG charts drawn by the page itself: no library, no network, no inline styles
// (the page's Content-Security-Policy forbids them). Each function redraws its chart
// from plain numbers; a chart is a few hundred nodes at most, so a redraw per second
// is cheap.

const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

/** A "nice" axis maximum (1, 2, 2.5, 5 × 10^n) at or above `value`. */
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function frame(box, width, height) {
  box.replaceChildren();
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none",
                      role: "img" }, box);
}

/**
 * Stacked bars: accept (bottom, green) and deny (top, red), one pair per slot.
 * `labels(i)` gives an x-axis label for slot i or null; `ticks` horizontal grid lines.
 */
export function stackedBars(box, accept, deny, { labels = () => null, ticks = 4,
                                                highlight = -1, title = "" } = {}) {
  const width = Math.max(320, box.clientWidth || 640);
  const height = Math.max(80, box.clientHeight || 200);
  const left = 44, right = 8, top = 8, bottom = 20;
  const plotW = width - left - right, plotH = height - top - bottom;
  const root = frame(box, width, height);
  if (title) svg("title", {}, root).textContent = title;
  const top_ = niceMax(Math.max(1, ...accept.map((a, i) => a + (deny[i] || 0))));
  for (let t = 0; t <= ticks; t++) {
    const y = top + plotH - (plotH * t) / ticks;
    svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid-line" }, root);
    const label = svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, root);
    label.textContent = formatCount((top_ * t) / ticks);
  }
  const n = accept.length, slot = plotW / Math.max(1, n), gap = slot > 6 ? 1 : 0;
  for (let i = 0; i < n; i++) {
    const x = left + i * slot;
    if (i === highlight) svg("rect", { x, y: top, width: slot, height: plotH, class: "bar-now" }, root);
    const a = accept[i] || 0, d = deny[i] || 0;
    const ha = (plotH * a) / top_, hd = (plotH * d) / top_;
    if (a) svg("rect", { x: x + gap / 2, y: top + plotH - ha, width: slot - gap, height: ha,
                         class: "bar-ok" }, root);
    if (d) svg("rect", { x: x + gap / 2, y: top + plotH - ha - hd, width: slot - gap,
                         height: hd, class: "bar-bad" }, root);
    const text = labels(i);
    if (text !== null) {
      const label = svg("text", { x: x + slot / 2, y: height - 5, "text-anchor": "middle" }, root);
      label.textContent = text;
    }
  }
}

/** A donut of named parts [{value, colour, label}] with `centre` text in the middle. */
export function donut(box, parts, centre, sub) {
  const size = 150, r = 58, stroke = 20, c = size / 2;
  box.replaceChildren();
  const root = svg("svg", { viewBox: `0 0 ${size} ${size}`, role: "img" }, box);
  svg("circle", { cx: c, cy: c, r, fill: "none", stroke: "#182230", "stroke-width": stroke }, root);
  const total = parts.reduce((sum, p) => sum + p.value, 0);
  const circumference = 2 * Math.PI * r;
  let offset = 0;
  for (const part of parts) {
    if (!total || !part.value) continue;
    const length = (circumference * part.value) / total;
    svg("circle", { cx: c, cy: c, r, fill: "none", stroke: part.colour, "stroke-width": stroke,
                    "stroke-dasharray": `${length} ${circumference - length}`,
                    "stroke-dashoffset": -offset, transform: `rotate(-90 ${c} ${c})` }, root);
    offset += length;
  }
  const big = svg("text", { x: c, y: c + 4, "text-anchor": "middle", "font-size": 24,
                            "font-weight": 800 }, root);
  big.textContent = centre;
  const small = svg("text", { x: c, y: c + 22, "text-anchor": "middle", "font-size": 11,
                              fill: "#8a9bb0" }, root);
  small.textContent = sub;
}

export function formatCount(value) {
  if (value >= 1e6) return `${(value / 1e6).toFixed(value >= 1e7 ? 0 : 1)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(0)}k`;
  return Number.isInteger(value) ? value.toLocaleString("en-US") : value.toFixed(1);
}
