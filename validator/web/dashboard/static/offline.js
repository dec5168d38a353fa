// The offline panel: terminals out of contact now, their bundle's age and since when
// their decisions wait to be uploaded (validator/web/dashboard/offline_board.py says what the
// service can know). Text goes in with textContent only, as everywhere on the page.

import { h } from "./render.js";
import { venueName } from "./labels.js";
import { clockTime } from "./zone.js";

const $ = (id) => document.getElementById(id);
const STATUS = { offline: ["离线", "offline"], expired: ["离线包过期", "bundle expired"],
  online: ["在线", "online"] };

function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

const at = (unix, who) => (unix ? clockTime(unix * 1000, who) : "–");

export function renderOffline(s, who) {
  const rows = s.offline || [];
  const out = rows.filter((t) => t.status !== "online").length;
  $("offline-summary").textContent = rows.length ? `${out} / ${rows.length}` : "";
  $("offline-rows").replaceChildren(...rows.map((t) => h("tr", {
    class: `offline-${t.status}`, "data-terminal": t.id, "data-status": t.status },
  h("td", { class: "mono" }, t.id),
  h("td", { title: t.venue }, venueName(who, t.venue)[0]),
  h("td", {}, h("span", { class: `kind offline-${t.status}` }, STATUS[t.status][0]), " ",
    h("span", { class: "en" }, STATUS[t.status][1])),
  h("td", { class: "bundle-age" }, age(t.bundle_age_s)),
  h("td", {}, at(t.last_upload_at, who)),
  h("td", {}, String(t.uploaded_today)),
  h("td", { class: "pending" }, t.pending_since ? `${at(t.pending_since, who)} →` : "–"))));
  $("offline-empty").hidden = rows.length > 0;
}
