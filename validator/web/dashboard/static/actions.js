// Admin actions: block/unblock a card and download settlement (the operator API's own
// endpoints), and look up a holder's recent decisions (the dashboard's lookup).

import { confirmStep } from "./confirm.js";
import { REASONS, label, operatorName, venueName } from "./labels.js";
import { maskCard as mask, refreshLists } from "./lists.js";
import { h } from "./render.js";
import { zoneShort } from "./zone.js";

const $ = (id) => document.getElementById(id);
const CARD_NO = /^[A-Z0-9]{9}$/;
const HOLDER_REF = /^[0-9a-f]{32}$/;
let wired = false;
let whoNow = null; // names and zone of the signed-in operator's city

function say(id, ok, text) {
  const node = $(id);
  node.className = `result ${ok ? "ok" : "bad"}`;
  node.textContent = text;
}

async function detail(response) {
  try {
    const body = await response.json();
    return body.detail || body.error || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

export function setupActions(api, who, latest) {
  const operators = $("settle-operator");
  operators.replaceChildren(h("option", { value: "" }, "全部 · all"),
    ...(who.operators || []).map((o) => h("option", { value: o.id }, `${o.name} · ${o.id}`)));
  const snap = latest();
  $("settle-date").value = snap ? snap.day : new Date().toISOString().slice(0, 10);
  whoNow = who;
  if (wired) return;
  wired = true;

  const cardInput = () => {
    const card = $("block-card").value.trim().toUpperCase();
    $("block-card").value = card;
    if (!CARD_NO.test(card)) {
      say("block-result", false, "卡号须为 9 位字母数字 Card number: 9 letters/digits");
      return null;
    }
    return card;
  };

  $("block-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const card = cardInput();
    if (!card) return;
    const reason = $("block-reason").selectedOptions[0].textContent;
    if (!await confirmStep(`挂失卡片 ${mask(card)}（${reason}）？此卡将在下一次刷卡时被拒绝。`,
      `Block card ${mask(card)}? Its next tap or QR will be denied.`)) {
      say("block-result", false, `已取消 ${mask(card)} · cancelled, nothing changed`);
      return;
    }
    const response = await api(`/v1/admin/blocked-cards/${encodeURIComponent(card)}`,
      { method: "PUT", body: { reason: $("block-reason").value } });
    refreshLists();
    if (response.ok) {
      say("block-result", true, `已挂失 ${mask(card)} · card blocked`);
      $("block-card").value = ""; // a full card number stays on screen no longer than needed
    }
    else say("block-result", false, `挂失失败 Block failed: ${await detail(response)}`);
  });

  $("unblock-button").addEventListener("click", async () => {
    const card = cardInput();
    if (!card) return;
    if (!await confirmStep(`解除卡片 ${mask(card)} 的挂失？此卡将恢复使用。`,
      `Unblock card ${mask(card)}? It will be accepted again.`)) {
      say("block-result", false, `已取消 ${mask(card)} · cancelled, nothing changed`);
      return;
    }
    const response = await api(`/v1/admin/blocked-cards/${encodeURIComponent(card)}`,
      { method: "DELETE" });
    refreshLists();
    if (response.ok) {
      say("block-result", true, `已解除挂失 ${mask(card)} · card unblocked`);
      $("block-card").value = "";
    }
    else if (response.status === 404) say("block-result", false, `${mask(card)} 未挂失 · was not blocked`);
    else say("block-result", false, `解除失败 Unblock failed: ${await detail(response)}`);
  });

  $("lookup-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const raw = $("lookup-q").value.trim();
    const params = new URLSearchParams({ days: $("lookup-days").value });
    if (HOLDER_REF.test(raw.toLowerCase()) && raw.length === 32) params.set("holder_ref", raw.toLowerCase());
    else if (CARD_NO.test(raw.toUpperCase())) params.set("card_no", raw.toUpperCase());
    else {
      say("lookup-result", false, "请输入 9 位卡号或 32 位 holder_ref · 9-char card number or 32-hex holder_ref");
      return;
    }
    const response = await api(`/v1/dashboard/decisions?${params}`);
    if (!response.ok) {
      say("lookup-result", false, `查询失败 Lookup failed: ${await detail(response)}`);
      return;
    }
    showLookup(await response.json());
    $("lookup-q").value = "";
  });

  $("settle-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = new URLSearchParams({ date: $("settle-date").value });
    if (operators.value) params.set("operator", operators.value);
    const response = await api(`/v1/settlement?${params}`, { accept: "text/csv" });
    if (!response.ok) {
      say("settle-result", false, `下载失败 Download failed: ${await detail(response)}`);
      return;
    }
    const blob = await response.blob();
    const link = h("a", { href: URL.createObjectURL(blob),
      download: `settlement-${params.get("date")}${operators.value ? `-${operators.value}` : ""}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    say("settle-result", true, `已下载 Downloaded ${link.download}`);
  });
}

function showLookup(found) {
  const rows = found.decisions;
  const who = Object.values(found.query)[0];
  say("lookup-result", true, `${who}: ${rows.length} 条记录 decisions · ${found.days.at(-1)} – ${found.days[0]}` +
    (found.truncated ? " · 仅显示最近部分 (truncated)" : ""));
  $("lookup-rows").replaceChildren(
    h("tr", {}, ...[`时间 Time · ${zoneShort(whoNow)}`, "终端 Terminal", "场所 Venue",
      "运营方 Operator", "结果 Decision", "原因 Reason", "票种 Fare", "卡号 Card"]
      .map((t) => h("th", {}, t))),
    ...rows.map((d) => h("tr", {},
      // decided_at is the city's local time with its offset (RFC 3339): shown as it is.
      h("td", { title: d.decided_at }, d.decided_at.replace("T", " ").slice(0, 19)),
      h("td", { class: "mono" }, d.terminal),
      h("td", { title: d.venue }, venueName(whoNow, d.venue)[0]),
      h("td", { title: d.operator || "" }, operatorName(whoNow, d.operator)[0]),
      h("td", { class: d.decision === "accept" ? "tag-accept" : "tag-deny" },
        d.decision === "accept" ? "通过 accept" : "拒绝 deny"),
      h("td", {}, label(REASONS, d.reason).join(" ")),
      h("td", {}, d.fare_class ? `${d.fare_class} ¥${((d.amount_fen || 0) / 100).toFixed(2)}` : "–"),
      h("td", { class: "mono" }, d.card || "–"))));
}
