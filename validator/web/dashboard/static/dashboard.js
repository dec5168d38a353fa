// The operator dashboard: sign-in, the live stream, and wiring of the panels.
//
// The token lives in sessionStorage (this tab only) and travels in the Authorization
// header — never in a URL. The live stream is Server-Sent Events read with fetch() and a
// ReadableStream, because EventSource cannot send that header.

import { render, renderOutage, staleReasons, tickClock } from "./render.js";
import { setupActions } from "./actions.js";
import { setupLists, stopLists } from "./lists.js";
import { showStale } from "./stale.js";

const TOKEN_KEY = "ssc-dashboard-token";
const STALE_AFTER_MS = 5000;
const $ = (id) => document.getElementById(id);

// `down`: no snapshot from the service for STALE_AFTER_MS (it, or the way to it, is gone).
const state = { token: null, who: null, abort: null, latest: null, receivedAt: 0, frame: 0,
  down: false };

class AuthError extends Error {}

/** fetch() with the operator token; 401 signs the page out. */
export async function api(path, { method = "GET", body, accept = "application/json" } = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    signOut("令牌已失效 Token no longer valid");
    throw new AuthError("unauthorized");
  }
  return response;
}

async function signIn(token) {
  const response = await fetch("/v1/dashboard/whoami", {
    headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
  if (response.status === 401) throw new AuthError("令牌无效 Invalid token");
  if (!response.ok) throw new Error(`服务错误 Server error ${response.status}`);
  state.token = token;
  state.who = await response.json();
  sessionStorage.setItem(TOKEN_KEY, token);
  showApp();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.who = null;
  state.latest = null;
  stopLists();
  if (state.abort) state.abort.abort();
  state.abort = null;
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  $("token").value = "";
  $("token").focus();
}

function showApp() {
  const who = state.who;
  $("signin").hidden = true;
  $("app").hidden = false;
  $("city").textContent = [who.city_zh, who.city].filter(Boolean).join(" · ");
  const role = who.role === "admin" ? "管理员 admin" : "查看 viewer";
  $("who").textContent = `${who.name} · ${role}`;
  $("actions").hidden = who.role !== "admin";
  if (who.role === "admin") setupActions(api, who, () => state.latest);
  setupLists(api, who);
  startStream();
}

function startStream() {
  const controller = new AbortController();
  state.abort = controller;
  (async () => {
    let delay = 1000;
    while (!controller.signal.aborted) {
      try {
        await readStream(controller.signal, () => { delay = 1000; });
      } catch (error) {
        if (error instanceof AuthError || controller.signal.aborted) return;
      }
      if (!state.down) setLive("wait", "重连中", "RECONNECTING");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 8000);
    }
  })();
}

async function readStream(signal, onOpen) {
  const response = await fetch("/v1/dashboard/stream", {
    headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
    cache: "no-store", signal });
  if (response.status === 401) { signOut("令牌已失效 Token no longer valid"); throw new AuthError(); }
  if (!response.ok || !response.body) throw new Error(`stream ${response.status}`);
  onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      handleEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

function handleEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (event !== "snapshot" || !data.length) return;
  state.latest = JSON.parse(data.join("\n"));
  state.receivedAt = Date.now();
  state.down = false;
  setLive("ok", "实时", "LIVE");
  // Draw on the next frame, once, however many events arrived meanwhile.
  if (!state.frame) state.frame = requestAnimationFrame(() => {
    state.frame = 0;
    if (!state.latest) return;
    render(state.latest, state.who);
    showStale(state.who, staleReasons(state.latest));
  });
}

function setLive(kind, zh, en) {
  const pill = $("live");
  pill.className = `pill pill-${kind}`;
  pill.replaceChildren(`${zh} `, Object.assign(document.createElement("span"),
    { className: "en", textContent: en }));
}

function watchStaleness() {
  setInterval(() => {
    if (!state.token) return;
    if (state.latest && Date.now() - state.receivedAt > STALE_AFTER_MS) {
      // The service is silent: its last word was the snapshot of `latest.now`; what was
      // already stale in it (the store down since …) is older still.
      state.down = true;
      setLive("bad", "服务不可达", "SERVICE UNREACHABLE");
      const since = showStale(state.who, [...staleReasons(state.latest),
        { since: state.latest.now * 1000 }]);
      renderOutage(state.who, since);
    }
    tickClock(state.latest, state.receivedAt, state.who);
  }, 1000);
}

function boot() {
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("signin-error").textContent = "";
    $("signin-button").disabled = true;
    try {
      await signIn($("token").value.trim());
    } catch (error) {
      $("signin-error").textContent = error.message || "登录失败 Sign-in failed";
    } finally {
      $("signin-button").disabled = false;
    }
  });
  $("signout").addEventListener("click", () => signOut());
  watchStaleness();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    signIn(saved).catch((error) => signOut(error instanceof AuthError ? ""
      : "服务不可达，请稍后再登录 Service unreachable: sign in again later"));
  } else {
    signOut();
  }
}

boot();
