// Renders one board snapshot into the page. Text goes in with textContent only: every
// string from the server (including terminal ids claimed by forged requests) stays text.

import { donut, formatCount, stackedBars } from "./charts.js";
import { renderKpis } from "./kpis.js";
import { renderOffline } from "./offline.js";
import { CATEGORIES, FARES, FRAUD, REASONS, label, operatorName, venueName } from "./labels.js";
import { clockTime, timeWithZone, zoneLabel, zoneShort } from "./zone.js";

const $ = (id) => document.getElementById(id);
const P99_BUDGET_MS = 25;
const STALE_BOARD_S = 5; // the feed's lease lapses after 3 s; a successor then rebuilds
const fmt = (n) => (n ?? 0).toLocaleString("en-US");
let lastFeedAt = 0;

/** `h("div", {class: "x"}, "text", child)` — a small element builder. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value);
    else if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const bi = (pair) => [pair[0], " ", h("span", { class: "en" }, pair[1])];

export function render(s, who) {
  renderKpis(s);
  renderAlerts(s, who);
  renderCharts(s, who);
  renderReasons(s);
  renderFraudKinds(s);
  renderSpots(s);
  renderRoutes(s, who);
  renderFares(s);
  renderTerminals(s, who);
  renderFeed(s, who);
  renderOffline(s, who);
  $("seq").textContent = `snapshot #${s.seq}`;
}

export function tickClock(s, receivedAt, who) {
  if (!s) return;
  const now = s.now * 1000 + (Date.now() - receivedAt);
  $("clock").textContent = clockTime(now, who);
  $("day").textContent = `${s.day} · ${zoneLabel(who, now)}`;
  $("day").title = (who && who.time_zone) || "";
  for (const node of document.querySelectorAll(".zone")) node.textContent = zoneShort(who, now);
}

/** Why the board's figures are not live, from the snapshot itself: [{since: ms}]. */
export function staleReasons(s) {
  const reasons = [];
  if (!s) return reasons;
  if (!s.store.ok) {
    const at = s.store.last_ok_at;
    reasons.push({ since: typeof at === "number" ? at * 1000 : null });
  }
  const age = s.feed ? s.feed.board_age_s : 0;
  if (age > STALE_BOARD_S) reasons.push({ since: (s.now - age) * 1000 });
  return reasons;
}

function storePill(kind, en) {
  const pill = $("store");
  pill.className = `pill pill-${kind}`;
  pill.dataset.state = kind;
  pill.replaceChildren("存储 ", h("span", { class: "en" }, en));
}

/** The service itself does not answer: nothing on screen is known to be true now. */
export function renderOutage(who, since) {
  const at = since === null ? "" : timeWithZone(since, who);
  $("alerts").replaceChildren(h("span", { class: "alert alert-bad", "data-alert": "service" },
    ...bi([`服务不可达${at ? ` · 数据停在 ${at}` : ""}`,
      `Service unreachable${at ? ` · figures as of ${at}` : ""}`])));
  storePill("unknown", "STORE ? · service unreachable");
}

function renderAlerts(s, who) {
  const items = [];
  if (!s.store.ok) {
    const at = s.store.last_ok_at ? timeWithZone(s.store.last_ok_at * 1000, who) : "";
    items.push(["bad", `状态存储不可达${at ? ` · 数据停在 ${at}` : ""}`,
      `State store unreachable${at ? ` · figures as of ${at}` : ""}`, "store"]);
  }
  // The board is read by one process of the deployment; an old one means none reads now.
  const age = s.feed ? s.feed.board_age_s : 0;
  if (age > STALE_BOARD_S) items.push(["warn", `看板滞后 ${Math.round(age)} 秒`, `board ${Math.round(age)} s old`]);
  const p99 = s.latency.p99_ms;
  if (p99 !== null && p99 > P99_BUDGET_MS) items.push(["bad", `p99 时延 ${p99.toFixed(1)} ms 超预算`, "p99 over budget"]);
  const silent = s.terminals.filter((t) => t.status === "silent");
  if (silent.length) items.push(["bad", `${silent.length} 台终端失联`, `${silent.length} terminal(s) silent`]);
  for (const spot of s.spots) {
    if (spot.level === "full") items.push(["bad", `${spot.name} 客流已满`, `${spot.id} at capacity`]);
    else if (spot.level === "warn") items.push(["warn", `${spot.name} 客流 ${spot.pct}%`, `${spot.id} ≥ 80 %`]);
  }
  const decided = s.rate.accept_per_s + s.rate.deny_per_s;
  if (decided >= 1 && s.rate.deny_per_s / decided > 0.3) {
    items.push(["warn", `拒绝率 ${Math.round((100 * s.rate.deny_per_s) / decided)}%`, "deny rate high"]);
  }
  const forged = s.fraud.counts.bad_terminal_signature || 0;
  if (forged) items.push(["warn", `终端签名错误 ${fmt(forged)} 次`, "bad terminal signatures"]);
  if (!items.length) items.push(["ok", "运行正常", "All normal"]);
  $("alerts").replaceChildren(...items.map(([kind, zh, en, key]) =>
    h("span", { class: `alert alert-${kind}`, "data-alert": key || null }, ...bi([zh, en]))));
  if (s.store.ok) storePill("ok", `STORE ${s.store.ping_ms.toFixed(1)} ms`);
  else storePill("bad", "STORE UNREACHABLE 不可达");
}

function renderCharts(s, who) {
  const n = s.series.accept.length;
  stackedBars($("chart-rate"), s.series.accept, s.series.deny, {
    labels: (i) => ((n - i) % 30 === 0 ? `-${n - i}s` : i === n - 1 ? "now" : null),
    title: "decisions per second",
  });
  const hour = Number(new Date(s.now * 1000).toLocaleString("en-GB", { hour: "2-digit",
    hour12: false, timeZone: (who && who.time_zone) || undefined }));
  stackedBars($("chart-hours"), s.hours.accept, s.hours.deny, {
    labels: (i) => (i % 3 === 0 ? String(i).padStart(2, "0") : null), ticks: 2, highlight: hour,
  });
}

function barRow(labelNodes, value, max, { cls = "", mark = null, valueNodes = null, rowCls = "" } = {}) {
  const width = max > 0 ? Math.min(100, (100 * value) / max) : 0;
  const track = h("div", { class: "bar-track" },
    h("div", { class: `bar-fill ${cls}`, style: { width: `${width}%` } }));
  if (mark !== null) track.append(h("div", { class: "bar-mark", style: { left: `${mark}%` } }));
  return h("div", { class: `bar-row ${rowCls}` }, h("div", { class: "bar-label" }, ...labelNodes),
    track, h("div", { class: "bar-value" }, ...(valueNodes || [fmt(value)])));
}

function renderReasons(s) {
  const rows = s.reasons.slice(0, 12);
  const max = rows.length ? rows[0].count : 0;
  $("reasons").replaceChildren(...(rows.length ? rows.map((r) =>
    barRow(bi(label(REASONS, r.code)), r.count, max, { cls: "bad" }))
    : [h("p", { class: "muted" }, ...bi(["今日暂无拒绝", "No denials today"]))]));
}

function renderFraudKinds(s) {
  const rows = Object.entries(s.fraud.counts).sort((a, b) => b[1] - a[1]);
  const max = rows.length ? rows[0][1] : 0;
  $("fraud-kinds").replaceChildren(...(rows.length ? rows.map(([kind, n]) =>
    barRow(bi(label(FRAUD, kind)), n, max, { cls: "warn" }))
    : [h("p", { class: "muted" }, ...bi(["暂无", "None today"]))]));
}

function renderSpots(s) {
  $("spots").replaceChildren(...s.spots.map((spot) => barRow(
    [h("b", {}, spot.id), " ", spot.name, " ", h("span", { class: "en" }, spot.name_en || "")],
    spot.entries, spot.capacity, {
      cls: spot.level === "ok" ? "ok" : spot.level === "warn" ? "warn" : "bad", mark: 80,
      rowCls: `spot-${spot.level}`,
      valueNodes: [`${fmt(spot.entries)}`, h("span", { class: "en" }, `/ ${fmt(spot.capacity)} · ${spot.pct}%`)],
    })));
}

function renderRoutes(s, who) {
  const max = Math.max(1, ...s.routes.map((r) => r.rides));
  $("routes").replaceChildren(...s.routes.map((r) => barRow(
    [h("b", { title: `bus:${r.id}` }, r.id), " ",
      h("span", { class: "en", title: r.operator }, operatorName(who, r.operator)[0])],
    r.rides, max, { valueNodes: [fmt(r.rides), r.denies ? h("span", { class: "en bad" }, `拒${fmt(r.denies)}`) : null] })));
}

function renderFares(s) {
  const parts = Object.keys(FARES).map((k) => ({ value: s.fares[k] || 0, colour: FARES[k][2] }));
  const total = parts.reduce((a, p) => a + p.value, 0);
  donut($("chart-fares"), parts, formatCount(total), "通过 accepted");
  $("fare-legend").replaceChildren(
    ...Object.entries(FARES).map(([k, [zh, en, colour]]) => h("div", { class: "fare-item" },
      h("span", {}, h("i", { class: "sw", style: { background: colour } }), " ", zh, " ",
        h("span", { class: "en" }, en)), h("b", {}, fmt(s.fares[k])))),
    h("div", { class: "fare-item" }, h("span", {}, "优惠金额 ", h("span", { class: "en" }, "concession")),
      h("b", {}, `¥${s.money.concession_yuan}`)));
  const cats = Object.entries(s.categories);
  $("categories").replaceChildren(...(cats.length ? cats.map(([code, n]) =>
    h("span", { class: "chip" }, ...bi(label(CATEGORIES, code)), h("b", {}, fmt(n))))
    : [h("span", { class: "muted" }, "–")]));
}

function ago(seconds) {
  if (seconds === null) return "–";
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  return `${Math.floor(seconds / 3600)}h`;
}

const STATUS = { ok: ["在线", "ok"], warn: ["异常", "errors"], silent: ["失联", "silent"],
  idle: ["未见", "not seen"], disabled: ["停用", "disabled"] };

function renderTerminals(s, who) {
  const counts = {};
  for (const t of s.terminals) counts[t.status] = (counts[t.status] || 0) + 1;
  $("term-summary").replaceChildren(...["ok", "warn", "silent", "idle", "disabled"]
    .filter((k) => counts[k]).flatMap((k) => [h("i", { class: `sw ${k === "silent" ? "bad" : k}` }),
      `${STATUS[k][0]} ${STATUS[k][1]} ${counts[k]}`, " "]));
  $("terminals").replaceChildren(...s.terminals.map((t) => h("div", {
    class: `term ${t.status}${t.status === "silent" && t.last_seen !== null ? " went" : ""}`,
    "data-terminal": t.id, "data-status": t.status,
    title: `${t.id} · ${venueName(who, t.venue).join(" ")} (${t.venue}) · ${STATUS[t.status].join(" ")}\n` +
      `requests ${t.requests} · denies ${t.denies} · errors ${t.errors} · bad signatures ${t.bad_signatures}`,
  }, h("div", { class: "term-id" }, t.id.replace(/^T-/, "")),
  h("div", { class: "term-meta" }, h("span", {}, `⟳ ${ago(t.idle_s)}`), h("span", {}, fmt(t.requests))),
  h("div", { class: "term-meta" }, h("span", {}, `err ${t.error_pct}%`),
    h("span", {}, t.status === "ok" || t.status === "idle" ? "" : STATUS[t.status][0])))));
  $("unregistered").textContent = s.unregistered.length
    ? `未注册终端签名失败 Unregistered ids with bad signatures: ${s.unregistered
      .map((u) => `${u.id} ×${u.bad_signatures}`).join(", ")}` : "";
}

function renderFeed(s, who) {
  const newest = s.fraud.feed.length ? s.fraud.feed[0].at : 0;
  $("feed").replaceChildren(...s.fraud.feed.map((f) => h("tr", { class: f.at > lastFeedAt && lastFeedAt ? "fresh" : "" },
    h("td", {}, clockTime(f.at * 1000, who)),
    h("td", {}, h("span", { class: `kind kind-${f.kind}` }, label(FRAUD, f.kind)[0]), " ",
      h("span", { class: "en" }, label(FRAUD, f.kind)[1]),
      f.count > 1 ? h("span", { class: "count" }, `×${f.count}`) : null),
    h("td", { title: f.venue || "" }, venueName(who, f.venue)[0]),
    h("td", { class: "mono" }, f.terminal),
    h("td", { class: "mono" }, f.holder || "–"))));
  $("feed-empty").hidden = s.fraud.feed.length > 0;
  lastFeedAt = Math.max(lastFeedAt, newest);
}
