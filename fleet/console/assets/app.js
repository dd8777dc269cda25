// edgefleet console: polls the fleet-server API and renders plain DOM and
// inline SVG. No external libraries. Every API call carries the operator's
// token as "Authorization: Bearer"; the token lives in sessionStorage (this
// tab only, gone when it closes) and never in a cookie, so other sites
// cannot make the browser use it.
"use strict";

const TOKEN_KEY = "edgefleet-token";
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let me = null;
let timer = null;
const colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
const versionColor = {};

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts = {}) {
  opts.headers = Object.assign({}, opts.headers || {}, token ? { Authorization: "Bearer " + token } : {});
  if (opts.method && opts.method !== "GET") opts.headers["Content-Type"] = "application/json";
  const r = await fetch("/api/v1" + path, opts);
  let body = null;
  if (r.status !== 204) {
    const text = await r.text();
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
  }
  if (!r.ok) throw new APIError(r.status, (body && body.error && body.error.message) || r.status + " " + r.statusText);
  return body;
}

function show(loggedIn) {
  document.getElementById("login").hidden = loggedIn;
  document.getElementById("app").hidden = !loggedIn;
  document.getElementById("logout").hidden = !loggedIn || (me && me.id === "insecure-no-auth");
  document.getElementById("whoami").textContent = loggedIn && me ? (me.name + " (" + me.scope + ")") : "";
  document.body.dataset.view = loggedIn ? "app" : "login";
}

function loginError(msg) {
  document.getElementById("login-error").textContent = msg;
  show(false);
  document.getElementById("login-token").focus();
}

// login checks a token with /whoami and, if good, keeps it for this tab.
async function login(candidate) {
  token = candidate.trim();
  try {
    me = await api("/whoami");
  } catch (e) {
    token = ""; me = null;
    sessionStorage.removeItem(TOKEN_KEY);
    loginError(e.status === 401 ? "Token refused: " + e.message : "Cannot reach the API: " + e.message);
    return false;
  }
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  document.getElementById("login-error").textContent = "";
  document.getElementById("login-token").value = "";
  show(true);
  refresh();
  if (!timer) timer = setInterval(refresh, 2000);
  return true;
}

function logout(msg) {
  token = ""; me = null;
  sessionStorage.removeItem(TOKEN_KEY);
  if (timer) { clearInterval(timer); timer = null; }
  document.getElementById("summary").textContent = "";
  delete document.body.dataset.loaded;
  loginError(msg || "");
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function ago(t) {
  if (!t) return "never";
  const s = Math.max(0, Math.round((Date.now() - new Date(t)) / 1000));
  return s < 60 ? s + "s ago" : s < 3600 ? Math.round(s / 60) + "m ago" : Math.round(s / 3600) + "h ago";
}

function renderDevices(devs) {
  const tb = document.querySelector("#devices tbody");
  tb.replaceChildren(...devs.map(d => {
    const hw = d.hardware || {};
    const models = (d.models || []).map(m => m.id + "@" + (m.active || "-") + (m.shadow ? " (shadow " + m.shadow + ")" : "") + (m.candidate ? " (A/B " + m.candidate + " " + m.candidate_percent + "%)" : "")).join(", ");
    const labels = Object.entries(d.labels || {}).map(([k, v]) => k + "=" + v).join(", ");
    return el("tr", { "data-device": d.id, class: d.presence },
      el("td", {}, d.id),
      el("td", { class: "presence " + d.presence }, el("span", { class: "dot" }), d.presence),
      el("td", {}, (hw.arch || "?") + (hw.cpus ? " ×" + hw.cpus : "")),
      el("td", { title: (hw.cpu_features || []).join(" ") }, (hw.cpu_features || []).slice(0, 6).join(" ") + ((hw.cpu_features || []).length > 6 ? " …" : "")),
      el("td", {}, (hw.accelerators || []).join(", ") || "none"),
      el("td", {}, d.agent_version || ""),
      el("td", { class: "models" }, models),
      el("td", {}, labels),
      el("td", {}, ago(d.last_seen)));
  }));
  return devs;
}

function renderModels(ms) {
  const tb = document.querySelector("#models tbody");
  tb.replaceChildren(...ms.map(m => el("tr", { "data-model": m.id + "@" + m.version },
    el("td", {}, m.id), el("td", {}, m.version), el("td", {}, (m.target.length / 1024).toFixed(1) + " KiB"),
    el("td", {}, m.quantization || ""), el("td", { title: (m.ops || []).join(", ") }, (m.ops || []).length),
    el("td", {}, m.target.name), el("td", {}, ago(m.created)))));
}

function fmtGate(g) {
  if (g.name.includes("rate") || g.name.includes("agreement")) return g.value.toFixed(3);
  if (g.name.includes("ratio")) return g.value.toFixed(2) + "×";
  return String(Math.round(g.value));
}

async function command(id, cmd) {
  try { await api("/rollouts/" + encodeURIComponent(id) + "/" + cmd, { method: "POST" }); refresh(); }
  catch (e) { document.getElementById("error").textContent = cmd + " " + id + ": " + e.message; }
}

function renderRollouts(rs) {
  const box = document.getElementById("rollouts");
  if (!rs.length) { box.replaceChildren(el("p", { class: "empty" }, "No rollouts yet.")); return; }
  box.replaceChildren(...rs.map(r => {
    const s = r.spec, devs = Object.values(r.devices || {});
    const stages = s.stages.map((p, i) => {
      let cls = "stage";
      if (r.phase === "succeeded" || i < r.stage) cls += " done";
      else if (i === r.stage) cls += (r.phase === "rolled_back" || r.phase === "rolling_back") ? " failed" : " current";
      return el("div", { class: cls, "data-stage": i + 1 }, p + "%");
    });
    const counts = {};
    for (const d of devs) counts[d.job_state || "none"] = (counts[d.job_state || "none"] || 0) + 1;
    const gates = el("table", { class: "gates" }, el("tr", {}, el("th", {}, "gate"), el("th", {}, "value"), el("th", {}, "threshold"), el("th", {}, "")),
      ...(r.gates || []).map(g => el("tr", { "data-gate": g.name },
        el("td", {}, g.name), el("td", { class: !g.evaluated ? "na" : g.ok ? "ok" : "fail" }, g.evaluated ? fmtGate(g) : "n/a"),
        el("td", {}, fmtGate({ name: g.name, value: g.threshold })), el("td", { class: !g.evaluated ? "na" : g.ok ? "ok" : "fail" }, !g.evaluated ? "waiting" : g.ok ? "pass" : "FAIL"))));
    const final = r.phase === "succeeded" || r.phase === "rolled_back";
    const actions = el("div", { class: "actions" }, ...["promote", "pause", "resume", "abort"].map(c => {
      const b = el("button", { "data-action": c, onclick: () => command(s.id, c) }, c);
      if (final || (me && me.scope === "viewer")) b.disabled = true;
      return b;
    }));
    const events = el("ul", { class: "events" }, ...(r.events || []).slice(-6).reverse().map(e => el("li", {}, new Date(e.time).toLocaleTimeString() + " " + e.type + ": " + e.message)));
    return el("div", { class: "rollout", "data-id": s.id },
      el("h3", {}, s.id + " — " + s.model_id + "@" + s.version + " (" + s.strategy + ") ", el("span", { class: "phase " + r.phase }, r.phase)),
      el("div", { class: "reason" }, r.reason || ""),
      el("div", { class: "stages" }, ...stages),
      el("div", { class: "devices-summary" }, devs.length + " device(s) assigned: " + Object.entries(counts).map(([k, v]) => k + " " + v).join(", ")),
      el("div", { class: "health" }, "new p95 " + (r.new_health.p95_ms || 0).toFixed(2) + "ms over " + r.new_health.requests + " req, baseline p95 " + (r.baseline_health.p95_ms || 0).toFixed(2) + "ms"),
      gates, actions, events);
  }));
}

const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) { const e = document.createElementNS(SVGNS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; }

function chart(id, series, pick, fmt) {
  const W = 420, H = 180, L = 48, B = 22, T = 8, R = 8;
  const pts = series.flatMap(s => s.points.map(p => ({ t: new Date(p.time).getTime(), v: pick(p) })));
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" });
  if (!pts.length) { const t = svg("text", { x: 10, y: H / 2, class: "nodata" }); t.textContent = "no telemetry yet"; root.append(t); document.getElementById(id).replaceChildren(root); return; }
  const t0 = Math.min(...pts.map(p => p.t)), t1 = Math.max(...pts.map(p => p.t), t0 + 1000);
  const vmax = Math.max(...pts.map(p => p.v), 1e-9) * 1.1;
  const x = t => L + (t - t0) / (t1 - t0) * (W - L - R), y = v => H - B - v / vmax * (H - B - T);
  root.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999" }), svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#999" }));
  for (const f of [0, 0.5, 1]) {
    const lbl = svg("text", { x: 2, y: y(vmax / 1.1 * f) + 4, "font-size": 10 }); lbl.textContent = fmt(vmax / 1.1 * f); root.append(lbl);
  }
  const tl = svg("text", { x: L, y: H - 6, "font-size": 10 }); tl.textContent = new Date(t0).toLocaleTimeString(); root.append(tl);
  const tr = svg("text", { x: W - R - 50, y: H - 6, "font-size": 10 }); tr.textContent = new Date(t1).toLocaleTimeString(); root.append(tr);
  for (const s of series) {
    const key = s.model + "@" + s.version;
    if (!versionColor[key]) versionColor[key] = colors[Object.keys(versionColor).length % colors.length];
    const d = s.points.map(p => x(new Date(p.time).getTime()).toFixed(1) + "," + y(pick(p)).toFixed(1)).join(" ");
    root.append(svg("polyline", { points: d, fill: "none", stroke: versionColor[key], "stroke-width": 2, "data-version": key }));
  }
  document.getElementById(id).replaceChildren(root);
}

function renderCharts(series) {
  chart("chart-latency", series, p => p.p95_ms, v => v.toFixed(1));
  chart("chart-errors", series, p => p.error_rate, v => (v * 100).toFixed(1) + "%");
  const pct = series.flatMap(s => [{ model: s.model, version: s.version, points: s.points }]);
  chart("chart-percentiles", pct, p => p.p99_ms, v => v.toFixed(1));
  document.getElementById("legend").replaceChildren(...series.map(s => {
    const key = s.model + "@" + s.version;
    const i = el("i"); i.style.background = versionColor[key];
    return el("span", { "data-version": key }, i, key + " (" + s.points.reduce((n, p) => n + p.requests, 0) + " req)");
  }));
}

async function refresh() {
  if (!me) return;
  // Each part renders on its own, so one failing call cannot leave the
  // page stuck.
  const [devs, models, rollouts, series] = await Promise.allSettled([api("/devices"), api("/models"), api("/rollouts"), api("/telemetry/series?since=30m&step=10s")]);
  const parts = [devs, models, rollouts, series];
  const unauth = parts.find(p => p.status === "rejected" && p.reason.status === 401);
  if (unauth) { logout("Signed out: " + unauth.reason.message); return; }
  const errs = parts.filter(p => p.status === "rejected").map(p => p.reason.message);
  const val = p => (p.status === "fulfilled" && Array.isArray(p.value)) ? p.value : [];
  try {
    renderDevices(val(devs)); renderModels(val(models)); renderRollouts(val(rollouts)); renderCharts(val(series));
  } catch (e) { errs.push("render: " + e.message); }
  const d = val(devs), rs = val(rollouts);
  const online = d.filter(x => x.presence === "online").length;
  const active = rs.filter(r => r.phase !== "succeeded" && r.phase !== "rolled_back").length;
  document.getElementById("summary").textContent = `${d.length} devices, ${online} online · ${val(models).length} model versions · ${active} active rollout(s)`;
  document.getElementById("error").textContent = errs.length ? "API error: " + [...new Set(errs)].join("; ") : "";
  document.body.dataset.loaded = "true";
}

document.getElementById("login-form").addEventListener("submit", ev => {
  ev.preventDefault();
  login(document.getElementById("login-token").value);
});
document.getElementById("logout").addEventListener("click", () => logout("Logged out."));

// A link may carry the token in the fragment (#token=...; fragments are
// never sent to the server); it is moved to sessionStorage and removed
// from the address bar at once.
(async function boot() {
  // Not URLSearchParams: it would turn a "+" in the token into a space.
  if (location.hash.startsWith("#token=")) {
    let t = location.hash.slice("#token=".length);
    try { t = decodeURIComponent(t); } catch (e) { /* keep it raw */ }
    history.replaceState(null, "", location.pathname + location.search);
    await login(t);
    return;
  }
  if (token) { await login(token); return; }
  // No token: an --insecure-no-auth server answers without one.
  try { me = await api("/whoami"); show(true); refresh(); timer = setInterval(refresh, 2000); }
  catch (e) { me = null; loginError(e.status === 401 ? "" : "Cannot reach the API: " + e.message); }
})();
