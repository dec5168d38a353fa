// The block lists (挂失/停用) and the audit log, read from the operator API (viewer role).
// Card numbers are shown masked and holders by the first digits of their pseudonym;
// a registry change in the audit log is shown without its categories, which would tell
// one person's disability or veteran status (categories appear in aggregate only).
// An admin can lift a block from its row, after a confirmation step.

import { confirmStep } from "./confirm.js";
import { AUDIT_ACTIONS, label } from "./labels.js";
import { h } from "./render.js";
import { dateTime } from "./zone.js";

const $ = (id) => document.getElementById(id);
const LIST_LIMIT = 100;
const AUDIT_LIMIT = 50;
const REFRESH_MS = 30000;
export const maskCard = (card) => `${card.slice(0, 3)}****${card.slice(-2)}`;
const shortRef = (ref) => `${ref.slice(0, 8)}…`;

function say(id, ok, text) {
  const node = $(id);
  node.className = `result ${ok ? "ok" : "bad"}`;
  node.textContent = text;
}

let context = null; // { api, who }
let timer = 0;

export function setupLists(api, who) {
  context = { api, who };
  $("blocked-refresh").onclick = () => refreshLists();
  $("audit-refresh").onclick = () => refreshLists();
  clearInterval(timer);
  timer = setInterval(() => { if (context) refreshLists(); }, REFRESH_MS);
  refreshLists();
}

export function stopLists() {
  context = null;
  clearInterval(timer);
}

export async function refreshLists() {
  if (!context) return;
  await Promise.all([loadBlocks(), loadAudit()]);
}

async function getJson(path) {
  const response = await context.api(path);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

async function loadBlocks() {
  try {
    const [cards, holders] = await Promise.all([
      getJson(`/v1/admin/blocked-cards?limit=${LIST_LIMIT}`),
      getJson(`/v1/admin/blocked-holders?limit=${LIST_LIMIT}`)]);
    $("blocked-cards").replaceChildren(...cards.blocks.map((b) => blockRow("card", b.card_no, b)));
    $("blocked-holders").replaceChildren(
      ...holders.blocks.map((b) => blockRow("holder", b.holder_ref, b)));
    $("blocked-empty").hidden = cards.blocks.length + holders.blocks.length > 0;
    const more = [cards.next && "cards", holders.next && "holders"].filter(Boolean);
    say("blocked-result", true, `卡片 ${cards.blocks.length} · 持卡人 ${holders.blocks.length}` +
      (more.length ? ` · 仅显示前 ${LIST_LIMIT} 条 first ${LIST_LIMIT} shown` : ""));
  } catch (error) {
    if (error.message !== "unauthorized") say("blocked-result", false, `读取失败 Could not load: ${error.message}`);
  }
}

// A row's full id stays in memory, off the screen: what its Unblock button lifts.
const rowIdent = new WeakMap();

function blockRow(kind, ident, block) {
  const shown = kind === "card" ? maskCard(ident) : shortRef(ident);
  const admin = context.who.role === "admin";
  const row = h("tr", { "data-kind": kind, class: block.active ? "" : "inactive" },
    h("td", { class: "mono" }, kind === "card" ? "卡 " : "人 ", shown),
    h("td", {}, block.reason || "–"), h("td", {}, block.until || "长期 open-ended"),
    h("td", {}, block.active ? "生效 active" : "已过期 ended"),
    h("td", {}, admin ? h("button", { type: "button", class: "small unblock" }, "解除 Unblock")
      : null));
  rowIdent.set(row, { kind, ident, shown });
  return row;
}

// Row buttons are wired once here rather than per row: rows are rebuilt on every refresh.
document.addEventListener("click", async (event) => {
  const button = event.target.closest && event.target.closest("button.unblock");
  const entry = button && rowIdent.get(button.closest("tr"));
  if (!entry || !context) return;
  const { kind, ident, shown } = entry;
  const what = kind === "card" ? ["解除卡片挂失", "Unblock card"] : ["恢复持卡人", "Unblock holder"];
  if (!await confirmStep(`${what[0]} ${shown}？`, `${what[1]} ${shown}?`)) return;
  const path = kind === "card" ? "blocked-cards" : "blocked-holders";
  const response = await context.api(`/v1/admin/${path}/${encodeURIComponent(ident)}`,
    { method: "DELETE" });
  say("blocked-result", response.ok, response.ok ? `已解除 ${shown} · unblocked`
    : `解除失败 Unblock failed: HTTP ${response.status}`);
  refreshLists();
});

function change(entry) {
  const value = entry.new ?? entry.old;
  if (entry.action.startsWith("holder.")) {
    if (entry.action === "holder.import" && value) {
      return `新增 ${value.created} · 更新 ${value.updated} · 拒绝 ${value.rejected}`;
    }
    return "类别不显示 categories not shown";
  }
  if (!value) return "–";
  const parts = [value.reason, value.until && `至 until ${value.until}`].filter(Boolean);
  return parts.join(" · ") || "–";
}

function target(entry) {
  if (entry.action.startsWith("card_block.")) return maskCard(entry.target);
  if (/^[0-9a-f]{32}$/.test(entry.target)) return shortRef(entry.target);
  return entry.target;
}

async function loadAudit() {
  try {
    const { entries } = await getJson(`/v1/admin/audit?limit=${AUDIT_LIMIT}`);
    $("audit-rows").replaceChildren(...entries.map((e) => (e.unreadable
      ? h("tr", {}, h("td", { colspan: 5, class: "muted" }, `无法读取 unreadable entry ${e.id}`))
      : h("tr", {},
        h("td", {}, dateTime(Date.parse(e.at), context.who)),
        h("td", {}, `${e.who} `, h("span", { class: "en" }, e.role)),
        h("td", { title: e.action }, label(AUDIT_ACTIONS, e.action)[0], " ",
          h("span", { class: "en" }, label(AUDIT_ACTIONS, e.action)[1])),
        h("td", { class: "mono" }, target(e)), h("td", {}, change(e))))));
    $("audit-empty").hidden = entries.length > 0;
    say("audit-result", true, `最近 ${entries.length} 条 newest ${entries.length}`);
  } catch (error) {
    if (error.message !== "unauthorized") say("audit-result", false, `读取失败 Could not load: ${error.message}`);
  }
}
