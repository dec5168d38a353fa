// The KPI tiles: big figures that must fit their tile at any width down to a laptop's
// 1366 px, up to 9 digits. A figure is written in full; if it overflows its tile it is
// set smaller, and if it still does it is written compactly (1.23亿, 4,567万) with the
// full figure in its tooltip — never cut.

import { formatCount } from "./charts.js";
import { CREDENTIALS, FRAUD, label } from "./labels.js";

const $ = (id) => document.getElementById(id);
const P99_BUDGET_MS = 25;
const fmt = (n) => (n ?? 0).toLocaleString("en-US");

/** 123456789 → "1.23亿", 45678901 → "4,568万", 12345 → "12,345". */
export function compact(n) {
  const value = n ?? 0;
  if (Math.abs(value) >= 1e8) return `${(value / 1e8).toFixed(2)}亿`;
  if (Math.abs(value) >= 1e6) return `${Math.round(value / 1e4).toLocaleString("en-US")}万`;
  return fmt(value);
}

/** A rate per second: one decimal below 100/s, whole numbers above (289.5 → "290"). */
export function rate(value) {
  return value >= 100 ? formatCount(Math.round(value)) : formatCount(value);
}

function overflows(box) {
  return box.scrollWidth > box.clientWidth + 0.5;
}

/** Write each [node, full, short] part; shrink the tile's figure, then go short, until it fits. */
export function fit(box, parts) {
  box.classList.remove("tight");
  box.removeAttribute("title");
  const write = (short) => parts.forEach(([node, full, brief]) => {
    const text = short ? brief : full;
    if (node.textContent !== text) {
      node.textContent = text;
      node.classList.remove("flash");
      void node.offsetWidth; // restart the animation
      node.classList.add("flash");
    }
  });
  write(false);
  if (!overflows(box)) return;
  box.classList.add("tight");
  if (!overflows(box)) return;
  write(true);
  box.title = parts.map(([, full]) => full).join(" ");
}

const tile = (id) => $(id).closest(".kpi-value");

export function renderKpis(s) {
  const acc = s.rate.accept_per_s, deny = s.rate.deny_per_s;
  fit(tile("k-acc-rate"), [[$("k-acc-rate"), rate(acc), formatCount(Math.round(acc))],
    [$("k-deny-rate"), rate(deny), formatCount(Math.round(deny))]]);
  fit(tile("k-accepted"), [[$("k-accepted"), fmt(s.totals.accepted), compact(s.totals.accepted)]]);
  fit(tile("k-denied"), [[$("k-denied"), fmt(s.totals.denied), compact(s.totals.denied)]]);
  $("k-deny-pct").textContent = s.totals.deny_pct.toFixed(1);
  const { p50_ms: p50, p99_ms: p99 } = s.latency;
  $("k-p50").textContent = p50 === null ? "–" : p50.toFixed(1);
  const p99Text = p99 === null ? "–" : p99.toFixed(1);
  fit(tile("k-p99"), [[$("k-p99"), p99Text, p99 === null ? "–" : String(Math.round(p99))]]);
  $("k-p99").classList.toggle("bad", p99 !== null && p99 > P99_BUDGET_MS);
  $("k-p99").closest(".kpi").classList.toggle("alarm", p99 !== null && p99 > P99_BUDGET_MS);
  const [whole, cents] = s.money.concession_yuan.split(".");
  const yuan = Number(whole);
  fit(tile("k-concession"), [[$("k-concession"), yuan.toLocaleString("en-US"), compact(yuan)],
    [$("k-concession-cents"), `.${cents}`, ""]]);
  $("k-fares").textContent = `免费 ${compact(s.fares.free)} · 半价 ${compact(s.fares.half)} · 全价 ${compact(s.fares.full)}`;
  const fraudTotal = Object.values(s.fraud.counts).reduce((a, b) => a + b, 0);
  fit(tile("k-fraud"), [[$("k-fraud"), fmt(fraudTotal), compact(fraudTotal)]]);
  $("k-fraud").classList.toggle("warn", fraudTotal > 0);
  const top = Object.entries(s.fraud.counts).sort((a, b) => b[1] - a[1]).slice(0, 2);
  $("k-fraud-sub").textContent = top.map(([k, n]) => `${label(FRAUD, k)[0]} ${compact(n)}`).join(" · ")
    || "无 none";
  $("k-credentials").textContent = Object.entries(s.credentials)
    .map(([k, n]) => `${label(CREDENTIALS, k).join(" ")} ${compact(n)}`).join(" · ") || "–";
}
