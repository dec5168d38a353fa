// Times as the city tells them: in the city's zone (config/city.toml `time_zone`), never
// the browser's, and labelled with it ("14:03:22 CST", "CST (UTC+8)").

/** "UTC+8" for `timeZone` at the instant `ms` (Intl's "GMT+8", named as operators say it). */
export function utcOffset(timeZone, ms = Date.now()) {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "shortOffset" })
    .formatToParts(new Date(ms));
  const name = (parts.find((p) => p.type === "timeZoneName") || {}).value || "GMT";
  return name.replace("GMT", "UTC").replace(/^UTC$/, "UTC+0");
}

/** "CST (UTC+8)": the zone's abbreviation from the server, and its offset now. */
export function zoneLabel(who, ms = Date.now()) {
  if (!who || !who.time_zone) return "";
  const offset = utcOffset(who.time_zone, ms);
  const abbr = who.time_zone_abbr || "";
  return abbr && !abbr.startsWith("+") && !abbr.startsWith("-") ? `${abbr} (${offset})` : offset;
}

/** The short zone name written after a time: "CST", or "UTC+4" where there is none. */
export function zoneShort(who, ms = Date.now()) {
  const abbr = (who && who.time_zone_abbr) || "";
  if (abbr && !abbr.startsWith("+") && !abbr.startsWith("-")) return abbr;
  return who && who.time_zone ? utcOffset(who.time_zone, ms) : "";
}

/** "14:03:22" in the city's zone. */
export function clockTime(ms, who) {
  return new Date(ms).toLocaleTimeString("en-GB", { timeZone: (who && who.time_zone) || undefined,
    hour12: false });
}

/** "2026-12-02 14:03:22" in the city's zone. */
export function dateTime(ms, who) {
  return new Date(ms).toLocaleString("sv-SE", { timeZone: (who && who.time_zone) || undefined,
    hour12: false });
}

/** "14:03:22 CST". */
export function timeWithZone(ms, who) {
  return `${clockTime(ms, who)} ${zoneShort(who, ms)}`.trim();
}
