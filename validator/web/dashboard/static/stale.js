// When the figures on screen stop being true — the service or its store unreachable, or
// no process reading the ledger — every panel says so: greyed, with the time its figures
// are from ("数据停在 14:03:22 CST · stale since …"). Nothing on screen passes for live.

import { h } from "./render.js";
import { timeWithZone } from "./zone.js";

/** `reasons`: [{since: ms | null}] — empty when everything is live. */
export function showStale(who, reasons) {
  const stale = reasons.length > 0;
  document.body.classList.toggle("stale", stale);
  const times = reasons.map((r) => r.since).filter((t) => Number.isFinite(t));
  const since = times.length ? Math.min(...times) : null;
  const text = since === null ? ["数据未更新", "stale"]
    : [`数据停在 ${timeWithZone(since, who)}`, `stale since ${timeWithZone(since, who)}`];
  for (const box of document.querySelectorAll("#app .panel, #app .kpi")) {
    let tag = box.querySelector(":scope > .stale-tag");
    if (!tag) {
      tag = h("div", { class: "stale-tag", "data-testid": "stale-tag" });
      box.prepend(tag);
    }
    tag.hidden = !stale;
    if (stale && tag.textContent !== text.join(" ")) {
      tag.replaceChildren(text[0], " ", h("span", { class: "en" }, text[1]));
    }
  }
  return since;
}
