// edgefleet console: polls the fleet-server API and renders plain DOM and
// inline SVG. No external libraries. Every API call carries the operator's
// token as "Authorization: Bearer"; the token lives in sessionStorage (this
// tab only, gone when it closes) and never in a cookie, so other sites
// cannot make the browser use it. Mutating calls send JSON (the API refuses
// other content types, see docs/security.md).
"use strict";

const TOKEN_KEY = "edgefleet-token";
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let me = null;
let timer = null;
// session counts sign-ins and sign-outs: a refresh started in an earlier
// session discards its answers (its token is gone). busy is the session
// whose refresh is running.
let session = 0;
let busy = -1;
// The last lists fetched, shared by the views.
const state = { devices: [], models: [], rollouts: [], rolloutDevices: {}, drift: null, driftAt: 0 };

// ---------------------------------------------------------------- API

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts = {}) {
  opts.headers = Object.assign({}, opts.headers || {}, token ? { Authorization: "Bearer " + token } : {});
  if (opts.method && opts.method !== "GET") opts.headers["Content-Type"] = "application/json";
  if (opts.json !== undefined) { opts.body = JSON.stringify(opts.json); delete opts.json; }
  let r;
  try { r = await fetch("/api/v1" + path, opts); }
  catch (e) { throw new APIError(0, "cannot reach the server: " + e.message); }
  let body = null;
  if (r.status !== 204) {
    const text = await r.text();
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
  }
  if (!r.ok) throw new APIError(r.status, (body && body.error && body.error.message) || r.status + " " + r.statusText);
  return body;
}

// ---------------------------------------------------------------- session

function canOperate() { return !!me && (me.scope === "operator" || me.scope === "admin"); }

function show(loggedIn) {
  document.getElementById("login").hidden = loggedIn;
  document.getElementById("app").hidden = !loggedIn;
  document.getElementById("nav").hidden = !loggedIn;
  document.getElementById("logout").hidden = !loggedIn || (me && me.id === "insecure-no-auth");
  document.getElementById("whoami").textContent = loggedIn && me ? (me.name + " (" + me.scope + ")") : "";
  document.body.dataset.view = loggedIn ? "app" : "login";
  for (const b of document.querySelectorAll("[data-needs=operator]")) {
    b.disabled = loggedIn && !canOperate();
    b.title = b.disabled ? "needs an operator or admin token" : "";
  }
}

function loginError(msg) {
  document.getElementById("login-error").textContent = msg;
  show(false);
  document.getElementById("login-token").focus();
}

function start() {
  show(true);
  route();
  if (!timer) timer = setInterval(refresh, 2000);
}

// login checks a token with /whoami and, if good, keeps it for this tab.
async function login(candidate) {
  session++;
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
  start();
  return true;
}

function logout(msg) {
  session++;
  token = ""; me = null;
  sessionStorage.removeItem(TOKEN_KEY);
  if (timer) { clearInterval(timer); timer = null; }
  document.getElementById("summary").textContent = "";
  delete document.body.dataset.loaded;
  loginError(msg || "");
}

// ---------------------------------------------------------------- DOM helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function ago(t) {
  if (!t || t.startsWith("0001")) return "never";
  const s = Math.max(0, Math.round((Date.now() - new Date(t)) / 1000));
  return s < 60 ? s + "s ago" : s < 3600 ? Math.round(s / 60) + "m ago" : s < 86400 ? Math.round(s / 3600) + "h ago" : Math.round(s / 86400) + "d ago";
}

function notice(msg, isError) {
  const n = document.getElementById("notice");
  n.textContent = msg; n.hidden = !msg;
  n.className = "notice" + (isError ? " error" : "");
}

function setResult(id, msg, isError) {
  const r = document.getElementById(id);
  r.textContent = msg;
  r.className = "result" + (isError ? " error" : msg ? " ok" : "");
}

const devLink = id => el("a", { href: "#/devices/" + encodeURIComponent(id), "data-device-link": id }, id);
const labelText = labels => Object.entries(labels || {}).map(([k, v]) => k + "=" + v).join(", ");
const num = (v, d = 2) => (v == null || isNaN(v)) ? "-" : Number(v).toFixed(d);
const pct = v => (v == null || isNaN(v)) ? "-" : (v * 100).toFixed(v < 0.001 && v > 0 ? 3 : 1) + "%";

// ---------------------------------------------------------------- charts
// Hand-drawn SVG: a chart is a set of series of {t, v} points; every
// point gets a marker (a single point is visible), lines join them, and
// the y axis ticks are "nice" steps whose precision follows the range.

const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null && v !== "") e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// niceTicks covers [lo, hi] with about n steps of 1, 2 or 5 × 10^k and
// returns the decimals that tell the ticks apart.
function niceTicks(lo, hi, n = 4) {
  if (!(hi > lo)) hi = lo + (Math.abs(lo) > 0 ? Math.abs(lo) * 0.5 : 1);
  const raw = (hi - lo) / n, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  const start = Math.floor(lo / step + 1e-9) * step, end = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let i = 0; start + i * step <= end + step * 1e-6; i++) ticks.push(start + i * step);
  const dec = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return { lo: start, hi: end, ticks, dec };
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400].map(s => s * 1000);
function timeTicks(t0, t1, n = 5) {
  const step = TIME_STEPS.find(s => (t1 - t0) / s <= n) || TIME_STEPS[TIME_STEPS.length - 1];
  const out = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
  return { ticks: out, seconds: step < 60000 };
}
const hhmm = (t, sec) => { const d = new Date(t), z = x => String(x).padStart(2, "0"); return z(d.getHours()) + ":" + z(d.getMinutes()) + (sec ? ":" + z(d.getSeconds()) : ""); };

const SHAPES = ["circle", "square", "triangle", "diamond"];
function marker(shape, x, y, color) {
  const r = 3.5;
  switch (shape) {
    case "square": return svg("rect", { x: x - r, y: y - r, width: 2 * r, height: 2 * r, fill: color });
    case "triangle": return svg("polygon", { points: `${x},${y - r - 1} ${x - r - 1},${y + r} ${x + r + 1},${y + r}`, fill: color });
    case "diamond": return svg("polygon", { points: `${x},${y - r - 1} ${x + r + 1},${y} ${x},${y + r + 1} ${x - r - 1},${y}`, fill: color });
    default: return svg("circle", { cx: x, cy: y, r, fill: color });
  }
}

// chart draws one SVG chart. spec: {name, series: [{key, color, dash,
// width, shape, points: [{t, v}]}], domain: [t0, t1] (time axis) or xaxis:
// {lo, hi, ticks, fmt} (any axis), scale (multiplies values for display),
// unit, events: [{t, label, kind}] (vertical lines), hlines: [{v, label}]
// (thresholds)}.
function chart(spec) {
  const W = 380, H = 200, L = 50, R = 10, T = 12, B = 24;
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": spec.name, "data-chart": spec.name });
  const scale = spec.scale || 1;
  const vals = spec.series.flatMap(s => s.points.map(p => p.v * scale)).filter(v => isFinite(v));
  if (!vals.length) { root.append(svg("text", { x: 12, y: H / 2, class: "nodata" }, "no data")); return root; }
  const hlines = (spec.hlines || []).filter(h => isFinite(h.v));
  const yt = niceTicks(0, Math.max(...vals, ...hlines.map(h => h.v * scale)), 4);
  let xa = spec.xaxis;
  if (!xa) {
    const tt = timeTicks(spec.domain[0], spec.domain[1]);
    xa = { lo: spec.domain[0], hi: spec.domain[1], ticks: tt.ticks, fmt: t => hhmm(t, tt.seconds) };
  }
  const x = t => L + (t - xa.lo) / (xa.hi - xa.lo) * (W - L - R), y = v => H - B - (v - yt.lo) / (yt.hi - yt.lo) * (H - B - T);
  const axis = svg("g", { class: "axis" });
  for (const v of yt.ticks) {
    axis.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    axis.append(svg("text", { x: L - 4, y: y(v) + 3.5, "text-anchor": "end", class: "ytick" }, v.toFixed(yt.dec) + (spec.unit || "")));
  }
  for (const t of xa.ticks) {
    const tx = x(t), anchor = tx > W - 30 ? "end" : tx < L + 15 ? "start" : "middle"; // keep edge labels inside
    axis.append(svg("text", { x: anchor === "end" ? W - 1 : anchor === "start" ? tx - 8 : tx, y: H - 8, "text-anchor": anchor, class: "xtick" }, xa.fmt(t)));
  }
  axis.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "frame" }), svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "frame" }));
  root.append(axis);
  for (const h of hlines) {
    const g = svg("g", { class: "threshold", "data-threshold": h.label });
    g.append(svg("line", { x1: L, x2: W - R, y1: y(h.v * scale), y2: y(h.v * scale) }), svg("text", { x: W - R - 2, y: y(h.v * scale) - 3, "text-anchor": "end" }, h.label));
    root.append(g);
  }
  const placed = [];
  for (const ev of [...(spec.events || [])].sort((a, b) => a.t - b.t)) {
    if (ev.t < xa.lo || ev.t > xa.hi) continue;
    const g = svg("g", { class: "event " + (ev.kind || ""), "data-event": ev.label });
    const ex = x(ev.t), right = ex > W - 90; // labels near the right edge go left of their line
    // Labels of nearby events go on separate rows.
    const row = placed.filter(px => Math.abs(px - ex) < 80).length;
    placed.push(ex);
    g.append(svg("line", { x1: ex, x2: ex, y1: T, y2: H - B }),
      svg("text", { x: ex + (right ? -3 : 3), y: T + 8 + row * 11, "text-anchor": right ? "end" : "start" }, ev.label));
    root.append(g);
  }
  for (const s of spec.series) {
    const pts = s.points.filter(p => isFinite(p.v)).map(p => [x(p.t), y(p.v * scale)]);
    const g = svg("g", { class: "series", "data-series": s.key, "data-points": pts.length });
    if (pts.length > 1) {
      g.append(svg("polyline", { points: pts.map(p => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" "), fill: "none", stroke: s.color,
        "stroke-width": s.width || 2, "stroke-dasharray": s.dash, "data-series": s.key }));
    }
    for (const p of pts) g.append(marker(s.shape, p[0], p[1], s.color));
    root.append(g);
  }
  return root;
}

function legend(items) {
  return el("div", { class: "legend" }, ...items.map(it => {
    const sw = svg("svg", { width: 30, height: 12, class: "swatch" });
    if (it.dash !== undefined) sw.append(svg("line", { x1: 1, x2: 29, y1: 6, y2: 6, stroke: it.color, "stroke-width": it.width || 2, "stroke-dasharray": it.dash }));
    if (it.shape) sw.append(marker(it.shape, 15, 6, it.color));
    return el("span", { "data-legend": it.key }, sw, it.label);
  }));
}

const PERCENTILES = [
  { key: "p50", field: "p50_ms", color: "#2b8a3e", dash: "", width: 1.5, name: "p50 (solid)" },
  { key: "p95", field: "p95_ms", color: "#e8590c", dash: "7 4", width: 2, name: "p95 (dashed)" },
  { key: "p99", field: "p99_ms", color: "#c92a2a", dash: "2 3", width: 2.5, name: "p99 (dotted)" },
];
const VERSION_COLORS = ["#1c7ed6", "#c2255c", "#5f3dc4", "#0b7285", "#e67700", "#2f9e44", "#862e9c", "#495057"];

// modelChartSet draws the charts of one model: latency percentiles,
// error rate and throughput over time, one series per version (marker
// shape = version), with version changes and rollbacks as vertical lines.
// stepSec converts a bucket's requests to requests per second.
function modelChartSet(model, series, rollouts, stepSec, opts = {}) {
  const pts = s => s.points.map(p => Object.assign({ t: new Date(p.time).getTime() }, p));
  const vs = series.map(s => ({ version: s.version, points: pts(s) })).filter(s => s.points.length)
    .sort((a, b) => a.points[0].t - b.points[0].t);
  const events = [];
  vs.forEach((s, i) => { if (i > 0) events.push({ t: s.points[0].t, label: "v" + s.version, kind: "version" }); });
  const all = vs.flatMap(s => s.points.map(p => p.t));
  const from = Math.min(...all);
  for (const r of rollouts) {
    if (r.spec.model_id !== model || r.phase !== "rolled_back" || !r.finished) continue;
    const t = new Date(r.finished).getTime();
    // Rollbacks during the charted window (a bucket's time is its start).
    if (t >= from) events.push({ t, label: "rollback v" + r.spec.version, kind: "rollback" });
  }
  let t0 = Math.min(...all, ...events.map(e => e.t)), t1 = Math.max(...all, ...events.map(e => e.t));
  if (t1 - t0 < 60000) { const c = (t0 + t1) / 2; t0 = c - 30000; t1 = c + 30000; }
  const pad = (t1 - t0) * 0.04; t0 -= pad; t1 += pad;
  const shape = i => SHAPES[i % SHAPES.length], vcolor = i => VERSION_COLORS[i % VERSION_COLORS.length];
  const lat = [], err = [], thr = [];
  vs.forEach((s, i) => {
    for (const pc of PERCENTILES) {
      lat.push({ key: model + "@" + s.version + " " + pc.key, color: pc.color, dash: pc.dash, width: pc.width, shape: shape(i), points: s.points.map(p => ({ t: p.t, v: p[pc.field] })) });
    }
    err.push({ key: model + "@" + s.version, color: vcolor(i), width: 2, shape: shape(i), points: s.points.map(p => ({ t: p.t, v: p.error_rate })) });
    thr.push({ key: model + "@" + s.version, color: vcolor(i), width: 2, shape: shape(i), points: s.points.map(p => ({ t: p.t, v: p.requests / stepSec })) });
  });
  const domain = [t0, t1];
  const versionsLegend = vs.map((s, i) => ({ key: "version " + s.version, label: "v" + s.version + " (" + s.points.reduce((n, p) => n + p.requests, 0) + " req)", color: vcolor(i), shape: shape(i) }));
  const fig = (name, caption, svgEl, leg) => el("figure", { "data-figure": name }, el("figcaption", {}, caption), svgEl, leg);
  const box = el("div", { class: "model-charts", "data-model-charts": model },
    opts.title === false ? "" : el("h3", {}, "model " + model),
    el("div", { class: "charts" },
      fig("latency", "latency (ms): p50 / p95 / p99", chart({ name: "latency", series: lat, domain, events }),
        legend([...PERCENTILES.map(p => ({ key: p.key, label: p.name, color: p.color, dash: p.dash, width: p.width })),
          ...vs.map((s, i) => ({ key: "version " + s.version, label: "v" + s.version, color: "#444", shape: shape(i) }))])),
      fig("errors", "error rate", chart({ name: "errors", series: err, domain, events, scale: 100, unit: "%" }),
        legend(versionsLegend.map(v => Object.assign({ dash: "" }, v)))),
      fig("throughput", "throughput (requests/s)", chart({ name: "throughput", series: thr, domain, events }),
        legend(versionsLegend.map(v => Object.assign({ dash: "" }, v)))),
      ...extraCharts(model, vs, domain, events)));
  return box;
}

// extraCharts draws the confidence histogram and the drift over time of
// each version when the server has the drift API (docs/monitoring.md;
// state.drift holds its answers per model), and nothing otherwise.
function extraCharts(model, versions, domain, events) {
  const d = state.drift && state.drift[model];
  if (!d) return [];
  const out = [];
  const idx = {};
  versions.forEach((s, i) => { idx[s.version] = i; });
  const vi = v => idx[v] !== undefined ? idx[v] : Object.keys(idx).length;
  // Confidence: the share of predictions per score bucket, per version,
  // and the reference the drift is measured against (grey, dashed).
  const hist = (h, key, color, dash, shape) => {
    const total = h.counts.reduce((a, b) => a + b, 0);
    if (!total) return null;
    return { key, color, dash, width: 2, shape, points: h.counts.map((c, i) => ({ t: (h.bounds[i] + h.bounds[i + 1]) / 2, v: c / total })) };
  };
  const conf = [];
  let ref = null;
  for (const [v, rep] of Object.entries(d.reports)) {
    const c = rep.current && rep.current.confidence;
    const s = c && hist(c, model + "@" + v, VERSION_COLORS[vi(v) % VERSION_COLORS.length], "", SHAPES[vi(v) % SHAPES.length]);
    if (s) conf.push(s);
    const r = rep.reference_distribution && rep.reference_distribution.confidence;
    if (!ref && r && rep.reference && rep.reference.source !== "none") ref = hist(r, "reference", "#868e96", "5 3", "circle");
  }
  if (conf.length) {
    const series = ref ? [ref, ...conf] : conf;
    const xaxis = { lo: 0, hi: 1, ticks: [0, 0.25, 0.5, 0.75, 1], fmt: v => v.toFixed(2) };
    out.push(el("figure", { "data-figure": "confidence" }, el("figcaption", {}, "confidence histogram (share of predictions per top-1 score)"),
      chart({ name: "confidence", series, xaxis, scale: 100, unit: "%" }),
      legend(series.map(s => ({ key: s.key, label: s.key === "reference" ? "reference" : "v" + s.key.slice(model.length + 1), color: s.color, dash: s.dash, shape: s.shape })))));
  }
  const drift = Object.entries(d.series).filter(([, ser]) => ser.points && ser.points.length).map(([v, ser]) => ({
    key: model + "@" + v, color: VERSION_COLORS[vi(v) % VERSION_COLORS.length], width: 2, shape: SHAPES[vi(v) % SHAPES.length],
    points: ser.points.map(p => ({ t: new Date(p.time).getTime(), v: p.drift })),
  }));
  if (drift.length) {
    // The drift gate of the newest rollout of this model, if it has one.
    const gated = state.rollouts.filter(r => r.spec.model_id === model && r.spec.gates && r.spec.gates.max_drift > 0)
      .sort((a, b) => new Date(b.created) - new Date(a.created))[0];
    const hlines = gated ? [{ v: gated.spec.gates.max_drift, label: "max drift " + gated.spec.gates.max_drift }] : [];
    // The drift series are per minute: widen the time axis to cover them.
    const ts = drift.flatMap(s => s.points.map(p => p.t));
    const dom = [Math.min(domain[0], ...ts), Math.max(domain[1], ...ts)];
    out.push(el("figure", { "data-figure": "drift" }, el("figcaption", {}, "drift (largest PSI vs the reference)"),
      chart({ name: "drift", series: drift, domain: dom, events, hlines }),
      legend(drift.map(s => ({ key: s.key, label: "v" + s.key.slice(model.length + 1), color: s.color, dash: "", shape: s.shape })))));
  }
  return out;
}

function renderModelCharts(series, stepSec) {
  const box = document.getElementById("model-charts");
  const byModel = {};
  for (const s of series) (byModel[s.model] = byModel[s.model] || []).push(s);
  const models = Object.keys(byModel).sort();
  if (!models.length) { box.replaceChildren(el("p", { class: "empty" }, "No telemetry in the last 30 minutes.")); return; }
  box.replaceChildren(...models.map(m => modelChartSet(m, byModel[m], state.rollouts, stepSec)));
}

// ---------------------------------------------------------------- rollouts

function fmtGate(name, v) {
  if (name.includes("rate") || name.includes("agreement")) return Number(v).toFixed(3);
  if (name.includes("ratio")) return Number(v).toFixed(2) + "×";
  if (name.includes("drift")) return Number(v).toFixed(3);
  return String(Math.round(v));
}

async function command(id, cmd, box) {
  try {
    await api("/rollouts/" + encodeURIComponent(id) + "/" + cmd, { method: "POST" });
    notice(cmd + " " + id + ": done");
    refresh();
  } catch (e) {
    const msg = cmd + " " + id + " failed: " + e.message;
    notice(msg, true);
    if (box) box.textContent = msg;
  }
}

// rollbackTo starts a one-stage rollout of the version the devices ran
// before a finished rollout.
async function rollbackTo(r, version, box) {
  const id = "rollback-" + r.spec.id + "-" + Math.floor(Date.now() / 1000) % 100000;
  try {
    await api("/rollouts", { method: "POST", json: { id, model_id: r.spec.model_id, version, strategy: "blue-green", stages: [100], selector: r.spec.selector || "", soak: "0s", gates: { min_requests: 0 } } });
    notice("rollout " + id + " puts " + r.spec.model_id + "@" + version + " back");
    refresh();
  } catch (e) {
    const msg = "roll back " + r.spec.id + " failed: " + e.message;
    notice(msg, true);
    if (box) box.textContent = msg;
  }
}

function baselineOf(r) {
  const n = {};
  for (const d of Object.values(r.devices || {})) if (d.baseline && d.baseline !== r.spec.version) n[d.baseline] = (n[d.baseline] || 0) + 1;
  return Object.entries(n).sort((a, b) => b[1] - a[1]).map(e => e[0])[0] || "";
}

function rolloutCard(r) {
  const s = r.spec, devs = Object.values(r.devices || {});
  const final = r.phase === "succeeded" || r.phase === "rolled_back";
  const stages = s.stages.map((p, i) => {
    let cls = "stage";
    if (r.phase === "succeeded" || i < r.stage) cls += " done";
    else if (i === r.stage) cls += (r.phase === "rolled_back" || r.phase === "rolling_back") ? " failed" : " current";
    return el("div", { class: cls, "data-stage": i + 1 }, p + "%");
  });
  const counts = {};
  for (const d of devs) counts[d.job_state || "none"] = (counts[d.job_state || "none"] || 0) + 1;
  const verdict = g => !g.evaluated ? "na" : g.ok ? "ok" : "fail";
  const gates = el("table", { class: "gates" }, el("tr", {}, el("th", {}, "gate"), el("th", {}, "value"), el("th", {}, "threshold"), el("th", {}, "")),
    ...(r.gates || []).map(g => el("tr", { "data-gate": g.name, class: verdict(g) },
      el("td", {}, g.name), el("td", { class: verdict(g) }, g.evaluated ? fmtGate(g.name, g.value) : "n/a"),
      el("td", {}, fmtGate(g.name, g.threshold)), el("td", { class: verdict(g) }, !g.evaluated ? "waiting" : g.ok ? "pass" : "FAIL"))));
  const err = el("p", { class: "error card-error", role: "alert" });
  const btn = (c, label, fn, enabled) => el("button", { type: "button", "data-action": c, "data-needs": "operator", disabled: !enabled || !canOperate(), onclick: fn }, label);
  const base = baselineOf(r);
  const actions = el("div", { class: "actions" },
    btn("promote", "promote", () => command(s.id, "promote", err), !final && r.phase !== "rolling_back"),
    btn("pause", "pause", () => command(s.id, "pause", err), r.phase === "running" || r.phase === "awaiting_promotion"),
    btn("resume", "resume", () => command(s.id, "resume", err), r.phase === "paused"),
    btn("abort", "abort (roll back)", () => command(s.id, "abort", err), !final && r.phase !== "rolling_back"),
    r.phase === "succeeded" && base && s.kind !== "agent" ? (state.models.some(m => m.id === s.model_id && m.version === base)
      ? btn("rollback", "roll back to v" + base, () => rollbackTo(r, base, err), true)
      : el("button", { type: "button", "data-action": "rollback", disabled: true, title: s.model_id + "@" + base + " is not in the model registry" }, "roll back to v" + base + " (not registered)")) : "");
  const card = el("div", { class: "rollout " + r.phase, "data-id": s.id },
    el("h3", {}, s.id + " — " + (s.kind === "agent" ? "edge-agent " + s.version : s.model_id + "@" + s.version) + " (" + s.strategy + (s.selector ? ", " + s.selector : "") + ") ", el("span", { class: "phase " + r.phase }, r.phase)),
    r.reason ? el("div", { class: "reason" }, r.reason) : "",
    el("div", { class: "stages" }, ...stages),
    el("div", { class: "devices-summary" }, devs.length + " device(s) assigned: " + (Object.entries(counts).map(([k, v]) => k + " " + v).join(", ") || "none yet")),
    el("div", { class: "health" }, "new p95 " + num(r.new_health.p95_ms) + " ms over " + r.new_health.requests + " req, error rate " + pct(r.new_health.error_rate) +
      "; baseline p95 " + num(r.baseline_health.p95_ms) + " ms" + (r.baseline_source ? " (" + r.baseline_source + ")" : "")),
    gates, failedDevices(r), actions, err,
    el("details", { class: "events" }, el("summary", {}, "events (" + (r.events || []).length + ")"),
      el("ul", {}, ...(r.events || []).slice(-12).reverse().map(e => el("li", {}, new Date(e.time).toLocaleTimeString() + " " + e.type + ": " + e.message)))));
  return card;
}

// failedDevices names each device that failed a gate, the gate and the
// device's reason, from GET /rollouts/{id}/devices.
function failedDevices(r) {
  const v = state.rolloutDevices[r.spec.id];
  if (!v) return "";
  const failed = v.data.devices.filter(d => d.failed_gates.length);
  const box = el("div", { class: "failed-devices" });
  if (failed.length) {
    box.append(el("h4", {}, failed.length + " device(s) failed a gate"),
      el("ul", {}, ...failed.flatMap(d => d.failed_gates.map(g => el("li", { "data-failed-device": d.id, "data-gate": g.gate },
        devLink(d.id), " failed ", el("strong", {}, g.gate), ": ", el("span", { class: "device-reason" }, g.reason))))));
  } else if (v.data.failed_gates.length) {
    box.append(el("p", {}, "gate " + v.data.failed_gates.map(g => g.name).join(", ") + " failed on the stage's aggregate; no single device exceeds it (per-device values below)."));
  }
  box.append(el("details", { class: "device-states" }, el("summary", {}, "devices (" + v.data.devices.length + ")"),
    el("table", {}, el("tr", {}, ...["device", "stage", "job", "reason", "requests", "p95 ms", "errors"].map(h => el("th", {}, h))),
      ...v.data.devices.map(d => el("tr", { "data-rollout-device": d.id },
        el("td", {}, devLink(d.id)), el("td", {}, d.stage), el("td", {}, d.job_state || "-"), el("td", {}, d.reason || ""),
        el("td", {}, d.health.requests), el("td", {}, num(d.health.p95_ms)), el("td", {}, pct(d.health.error_rate)))))));
  return box;
}

async function loadRolloutDevices(rs) {
  await Promise.all(rs.map(async r => {
    // A rollout finished over 30 s ago no longer changes: keep its view.
    const c = state.rolloutDevices[r.spec.id];
    const settled = r.finished && !r.finished.startsWith("0001") && Date.now() - new Date(r.finished) > 30000;
    if (c && c.phase === r.phase && settled) return;
    try {
      state.rolloutDevices[r.spec.id] = { phase: r.phase, data: await api("/rollouts/" + encodeURIComponent(r.spec.id) + "/devices") };
    } catch (e) {
      if (e.status === 401) throw e; // the card shows without the device list otherwise
    }
  }));
}

// MAX_FINISHED_CARDS bounds the finished rollouts shown (and polled).
const MAX_FINISHED_CARDS = 10;

function renderRollouts(rs) {
  const box = document.getElementById("rollouts");
  if (!rs.length) { box.replaceChildren(el("p", { class: "empty" }, "No rollouts yet. Create one under “New rollout”.")); return; }
  // Open <details> survive the 2 s re-render.
  const open = new Set([...box.querySelectorAll("details[open]")].map(d => d.closest("[data-id]").dataset.id + "|" + d.className));
  // Active rollouts and the newest finished ones; older ones on demand.
  const sorted = [...rs].sort((a, b) => new Date(b.created) - new Date(a.created));
  const finished = r => r.phase === "succeeded" || r.phase === "rolled_back";
  let older = 0, done = 0;
  const shown = sorted.filter(r => {
    if (!finished(r) || state.allRollouts || done++ < MAX_FINISHED_CARDS) return true;
    older++;
    return false;
  });
  box.replaceChildren(...shown.map(rolloutCard));
  if (older) box.append(el("button", { type: "button", "data-action": "show-older", onclick: () => { state.allRollouts = true; renderRollouts(state.rollouts); } }, "show " + older + " older rollout(s)"));
  for (const d of box.querySelectorAll("details")) if (open.has(d.closest("[data-id]").dataset.id + "|" + d.className)) d.open = true;
}

// ---------------------------------------------------------------- devices

function modelsText(d) {
  return (d.models || []).map(m => m.id + "@" + (m.active || "-") + (m.shadow ? " (shadow " + m.shadow + ")" : "") + (m.candidate ? " (A/B " + m.candidate + " " + m.candidate_percent + "%)" : "")).join(", ");
}

function hashQuery() {
  const q = location.hash.indexOf("?");
  const out = {};
  if (q < 0) return out;
  for (const part of location.hash.slice(q + 1).split("&")) {
    const [k, v = ""] = part.split("=");
    try { out[decodeURIComponent(k)] = decodeURIComponent(v); } catch (e) { /* ignore a malformed part */ }
  }
  return out;
}

// filterEdited: the device filter fields hold edits not applied yet. A
// refresh then leaves them alone (focus alone does not protect them: the
// user may click elsewhere, or a refresh may land between typing and
// applying); applying, clearing or navigating ends the edit.
let filterEdited = false;

// MAX_DEVICE_ROWS bounds the device table (large fleets: filter).
const MAX_DEVICE_ROWS = 500;

async function loadDeviceList(live) {
  const q = hashQuery(), sel = q.selector || "", idq = (q.id || "").toLowerCase();
  const fi = document.getElementById("filter-id"), fs = document.getElementById("filter-selector");
  if (!filterEdited) { // never overwrite what the user typed and has not applied
    if (document.activeElement !== fi) fi.value = q.id || "";
    if (document.activeElement !== fs) fs.value = sel;
  }
  let devs;
  try {
    devs = live(await api("/devices" + (sel ? "?selector=" + encodeURIComponent(sel) : "")));
    document.getElementById("filter-error").textContent = "";
  } catch (e) {
    if (e.status === 401 || e instanceof Stale) throw e;
    document.getElementById("filter-error").textContent = "Filter refused: " + e.message;
    devs = [];
  }
  renderDeviceRows(devs, idq);
}

// renderDeviceRows fills the device table with the devices whose id
// contains idq (at most MAX_DEVICE_ROWS rows).
function renderDeviceRows(devs, idq) {
  const matched = devs.filter(d => !idq || d.id.toLowerCase().includes(idq));
  const shown = matched.slice(0, MAX_DEVICE_ROWS);
  document.getElementById("filter-count").textContent = matched.length + " of " + state.devices.length + " device(s)" +
    (matched.length > shown.length ? "; showing the first " + shown.length + ", refine the filter" : "");
  const tb = document.querySelector("#devices tbody");
  tb.replaceChildren(...shown.map(d => {
    const hw = d.hardware || {};
    const feats = hw.cpu_features || [];
    return el("tr", { "data-device": d.id, class: d.presence },
      el("td", {}, devLink(d.id)),
      el("td", { class: "presence " + d.presence }, el("span", { class: "dot" }), d.presence),
      el("td", {}, (hw.arch || "?") + (hw.cpus ? " ×" + hw.cpus : "")),
      el("td", { title: feats.join(" ") }, feats.slice(0, 6).join(" ") + (feats.length > 6 ? " …" : "")),
      el("td", {}, (hw.accelerators || []).join(", ") || "none"),
      el("td", {}, d.agent_version || ""),
      el("td", { class: "models" }, modelsText(d)),
      el("td", { class: "labels" }, labelText(d.labels)),
      el("td", {}, ago(d.last_seen)));
  }));
  if (!shown.length) tb.append(el("tr", {}, el("td", { colspan: 9, class: "empty" }, "No device matches.")));
}

function kv(rows) {
  return el("table", { class: "kv" }, ...rows.filter(r => r).map(([k, v, attrs]) => el("tr", attrs || {}, el("th", {}, k), el("td", {}, v))));
}

async function loadDevicePage(id, live) {
  document.getElementById("device-title").textContent = id;
  const box = document.getElementById("device-page");
  const enc = encodeURIComponent(id);
  const [dev, health, series] = await Promise.allSettled([api("/devices/" + enc), api("/telemetry/health?since=1h&device=" + enc),
    api("/telemetry/series?since=30m&step=1m&device=" + enc)]).then(live);
  if (dev.status === "rejected") {
    if (dev.reason.status === 401) throw dev.reason;
    box.replaceChildren(el("p", { class: "error", role: "alert" }, "Device " + id + ": " + dev.reason.message));
    return;
  }
  const d = dev.value, hw = d.hardware || {}, h = health.status === "fulfilled" ? health.value : null;
  const status = kv([
    ["presence", el("span", { class: "presence " + d.presence, "data-presence": d.presence }, el("span", { class: "dot" }), d.presence)],
    ["last seen", ago(d.last_seen) + (d.last_seen ? " (" + new Date(d.last_seen).toLocaleString() + ")" : "")],
    ["enrolled", d.enrolled_at ? new Date(d.enrolled_at).toLocaleString() : "-"],
    ["agent", d.agent_version || "-"],
    ["certificate", d.cert_serial ? "serial " + d.cert_serial.slice(0, 16) + "…, expires " + new Date(d.cert_not_after).toLocaleDateString() : "password auth"],
    ["telemetry", "seq " + (d.telemetry_seq || 0) + (d.telemetry_dropped ? ", " + d.telemetry_dropped + " dropped on the device" : "")],
  ]);
  const labels = Object.keys(d.labels || {}).length
    ? el("ul", { class: "labels" }, ...Object.entries(d.labels).map(([k, v]) => el("li", { "data-label": k }, el("a", { href: "#/devices?selector=" + encodeURIComponent(k + "=" + v) }, k + "=" + v))))
    : el("p", { class: "empty" }, "no labels");
  const hardware = kv([
    ["arch", (hw.arch || "?") + (hw.os ? " / " + hw.os : "")],
    ["CPUs", hw.cpus || "-"],
    ["memory", hw.memory_bytes ? (hw.memory_bytes / (1 << 30)).toFixed(1) + " GiB" : "-"],
    ["CPU features", (hw.cpu_features || []).join(" ") || "-"],
    ["accelerators", (hw.accelerators || []).join(", ") || "none"],
    ["backends", (hw.backends || []).join(", ") || "-"],
    ["model variants", (hw.model_variants || []).join(", ") || "-"],
  ]);
  const models = el("table", { class: "served" }, el("tr", {}, ...["model", "active", "previous", "shadow", "A/B candidate", "installed"].map(x => el("th", {}, x))),
    ...(d.models || []).map(m => el("tr", { "data-served": m.id + "@" + (m.active || "") },
      el("td", {}, m.id), el("td", {}, m.active || "-"), el("td", {}, m.previous || "-"), el("td", {}, m.shadow || "-"),
      el("td", {}, m.candidate ? m.candidate + " (" + m.candidate_percent + "%)" : "-"), el("td", {}, (m.installed || []).join(", ")))));
  const jobs = [...(d.jobs || [])].sort((a, b) => new Date(b.updated || b.created) - new Date(a.updated || a.created));
  const jobTable = jobs.length ? el("table", { class: "jobs" }, el("tr", {}, ...["updated", "job", "kind", "version", "state", "reason", "rollout"].map(x => el("th", {}, x))),
    ...jobs.map(j => el("tr", { "data-job": j.job_id, class: "job " + j.state },
      el("td", {}, new Date(j.updated || j.created).toLocaleTimeString()), el("td", {}, j.job_id), el("td", {}, j.kind),
      el("td", {}, j.kind === "agent" ? "edge-agent " + j.version : j.model_id + "@" + j.version), el("td", { class: "state " + j.state }, j.state), el("td", {}, j.reason || ""), el("td", {}, j.rollout_id || ""))))
    : el("p", { class: "empty" }, "no jobs");
  const healthBox = h ? kv([
    ["requests (1 h)", h.requests], ["error rate", pct(h.error_rate)],
    ["latency p50 / p95 / p99", num(h.p50_ms) + " / " + num(h.p95_ms) + " / " + num(h.p99_ms) + " ms"],
    ["crashes", h.crashes, { class: h.crashes ? "bad" : "" }], ["device rollbacks", h.rollbacks, { class: h.rollbacks ? "bad" : "" }],
  ]) : el("p", { class: "error" }, "health unavailable: " + health.reason.message);
  const ser = series.status === "fulfilled" ? series.value : [];
  const byModel = {};
  for (const s of ser) (byModel[s.model] = byModel[s.model] || []).push(s);
  const charts = Object.keys(byModel).sort().map(m => modelChartSet(m, byModel[m], [], 60));
  box.replaceChildren(
    el("div", { class: "device-grid", "data-device-page": d.id },
      el("section", { "data-part": "status" }, el("h3", {}, "status"), status),
      el("section", { "data-part": "health" }, el("h3", {}, "health (last hour)"), healthBox),
      el("section", { "data-part": "labels" }, el("h3", {}, "labels"), labels),
      el("section", { "data-part": "hardware" }, el("h3", {}, "hardware"), hardware)),
    el("section", { "data-part": "models" }, el("h3", {}, "models served"), models),
    el("section", { "data-part": "jobs" }, el("h3", {}, "job history"), jobTable),
    el("section", { "data-part": "telemetry" }, el("h3", {}, "telemetry of this device (30 min)"), charts.length ? charts : el("p", { class: "empty" }, "no telemetry in the last 30 minutes")));
}

// ---------------------------------------------------------------- models, push, rollout form

function renderModels(ms) {
  const tb = document.querySelector("#models tbody");
  tb.replaceChildren(...ms.map(m => el("tr", { "data-model": m.id + "@" + m.version },
    el("td", {}, m.id), el("td", {}, m.version), el("td", {}, (m.target.length / 1024).toFixed(1) + " KiB"),
    el("td", {}, m.quantization || ""), el("td", { title: (m.ops || []).join(", ") }, (m.ops || []).length),
    el("td", {}, m.target.name), el("td", {}, ago(m.created)),
    el("td", {}, el("a", { href: "#/rollouts/new?model=" + encodeURIComponent(m.id + "@" + m.version), "data-action": "roll-out" }, "roll out…")))));
  if (!ms.length) tb.append(el("tr", {}, el("td", { colspan: 8, class: "empty" }, "No models yet: push one above.")));
  // The rollout form's model list follows the registry.
  const sel = document.getElementById("ro-model");
  const want = ms.map(m => m.id + "@" + m.version);
  const have = [...sel.options].map(o => o.value);
  if (want.join("\n") !== have.join("\n")) {
    const cur = sel.value;
    sel.replaceChildren(...want.map(v => el("option", { value: v }, v)));
    if (want.includes(cur)) sel.value = cur;
  }
  const q = hashQuery();
  if (q.model && want.includes(q.model) && !sel.dataset.fromLink) { sel.value = q.model; sel.dataset.fromLink = "1"; }
}

function readFileBase64(file) {
  return new Promise((resolve, reject) => {
    const fr = new FileReader();
    fr.onload = () => { const s = String(fr.result); resolve(s.slice(s.indexOf(",") + 1)); };
    fr.onerror = () => reject(new Error("read " + file.name + ": " + fr.error));
    fr.readAsDataURL(file);
  });
}

async function pushModel(ev) {
  ev.preventDefault();
  const f = document.getElementById("push-file").files[0];
  const id = document.getElementById("push-id").value.trim(), version = document.getElementById("push-version").value.trim();
  if (!f) { setResult("push-result", "Choose a .tflite file.", true); return; }
  const btn = document.getElementById("push-submit");
  btn.disabled = true;
  setResult("push-result", "Uploading " + f.name + " (" + (f.size / 1024).toFixed(1) + " KiB), inspecting and signing…");
  try {
    const data = await readFileBase64(f);
    const out = await api("/models/upload", { method: "POST", json: { id, version, notes: document.getElementById("push-notes").value, file_name: f.name, data } });
    const m = out.model;
    setResult("push-result", "Released " + m.id + "@" + m.version + ": " + m.target.length + " bytes, " + (m.quantization || "float") + ", " + (m.ops || []).length + " ops, sha256 " + m.target.sha256.slice(0, 12) + "…");
    document.getElementById("push-result").dataset.pushed = m.id + "@" + m.version;
    refresh();
  } catch (e) {
    setResult("push-result", "Push failed: " + e.message, true);
  } finally { btn.disabled = !canOperate(); }
}

function numField(id, name, integer) {
  const raw = document.getElementById(id).value.trim();
  const v = Number(raw);
  if (raw === "" || !isFinite(v) || (integer && !Number.isInteger(v))) throw new Error(name + " " + JSON.stringify(raw) + ": want a " + (integer ? "whole " : "") + "number");
  return v;
}

async function createRollout(ev) {
  ev.preventDefault();
  let body;
  try {
    const mv = document.getElementById("ro-model").value;
    if (!mv) throw new Error("no model version: push one first");
    const at = mv.lastIndexOf("@");
    const stages = document.getElementById("ro-stages").value.split(",").map(x => x.trim()).filter(x => x);
    for (const s of stages) if (!/^\d+$/.test(s)) throw new Error("stages: " + JSON.stringify(s) + " is not a whole percentage");
    body = {
      model_id: mv.slice(0, at), version: mv.slice(at + 1), strategy: document.getElementById("ro-strategy").value,
      stages: stages.map(Number), selector: document.getElementById("ro-selector").value.trim(),
      soak: document.getElementById("ro-soak").value.trim(), device_deadline: document.getElementById("ro-deadline").value.trim(),
      manual_promote: document.getElementById("ro-manual").checked,
      gates: {
        max_error_rate: numField("ro-max-error-rate", "max error rate"), max_p95_ratio: numField("ro-max-p95-ratio", "max p95 ratio"),
        min_p95_delta_ms: numField("ro-min-p95-delta", "p95 noise floor"), min_requests: numField("ro-min-requests", "min requests", true),
        max_crashes: numField("ro-max-crashes", "max crashes", true), max_install_failures: numField("ro-max-install-failures", "max install failures", true),
      },
    };
    const id = document.getElementById("ro-id").value.trim();
    if (id) body.id = id;
  } catch (e) { setResult("ro-result", "Not sent: " + e.message, true); return; }
  try {
    const r = await api("/rollouts", { method: "POST", json: body });
    setResult("ro-result", "Created rollout " + r.spec.id + " of " + r.spec.model_id + "@" + r.spec.version + ": " + r.phase);
    document.getElementById("ro-result").dataset.created = r.spec.id;
    refresh();
  } catch (e) {
    setResult("ro-result", "Rollout refused: " + e.message, true);
  }
}

// previewSelector says how many devices the rollout form's selector
// matches (or why the server refuses it) while the operator types.
let previewTimer = null;
function previewSelector() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(async () => {
    const sel = document.getElementById("ro-selector").value.trim(), out = document.getElementById("ro-selector-match");
    try {
      const devs = await api("/devices" + (sel ? "?selector=" + encodeURIComponent(sel) : ""));
      if (document.getElementById("ro-selector").value.trim() !== sel) return;
      out.textContent = "matches " + devs.length + " of " + state.devices.length + " device(s)";
      out.className = "hint";
    } catch (e) {
      out.textContent = e.message;
      out.className = "hint error";
    }
  }, 250);
}

// ---------------------------------------------------------------- routing and refresh

function currentView() {
  const h = location.hash.replace(/\?.*$/, "");
  if (h.startsWith("#/devices/")) { let id = h.slice("#/devices/".length); try { id = decodeURIComponent(id); } catch (e) { /* raw */ } return ["device", id]; }
  if (h === "#/devices") return ["devices"];
  if (h === "#/models") return ["models"];
  if (h === "#/rollouts/new") return ["new-rollout"];
  return ["fleet"];
}

function route() {
  const [v] = currentView();
  for (const s of document.querySelectorAll(".view")) s.hidden = s.dataset.viewName !== v;
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === v || (v === "device" && a.dataset.nav === "devices"));
  document.body.dataset.page = v;
  refresh();
}

// loadDrift fetches every charted version's drift report and drift series
// (GET /models/{id}/{version}/drift[/series], docs/monitoring.md), at most
// every 10 s. A server without the drift API answers 404: the console then
// stops asking and draws no confidence or drift charts.
async function loadDrift(series) {
  if (state.drift === false || (state.driftAt && Date.now() - state.driftAt < 10000)) return;
  const out = {};
  try {
    await Promise.all(series.map(async s => {
      const base = "/models/" + encodeURIComponent(s.model) + "/" + encodeURIComponent(s.version) + "/drift";
      const [rep, ser] = await Promise.all([api(base + "?since=30m"), api(base + "/series?since=30m&step=1m")]);
      const m = out[s.model] = out[s.model] || { reports: {}, series: {} };
      m.reports[s.version] = rep; m.series[s.version] = ser;
    }));
  } catch (e) {
    if (e.status === 404 || e.status === 405) { state.drift = false; return; }
    if (e.status === 401) throw e;
    return; // keep the last answer; the next refresh asks again
  }
  state.drift = out; state.driftAt = Date.now();
}

async function refresh() {
  const my = session;
  if (!me || busy === my) return;
  busy = my;
  try { await refreshOnce(my); }
  catch (e) {
    if (my !== session) return;
    if (e.status === 401) logout("Signed out: " + e.message);
    else document.getElementById("error").textContent = "API error: " + e.message;
  } finally { if (busy === my) busy = -1; }
}

// stale ends a refresh of an earlier session.
class Stale extends Error {}

async function refreshOnce(my) {
  const live = v => { if (my !== session) throw new Stale("stale"); return v; };
  // Each part renders on its own, so one failing call cannot leave the
  // page stuck on loading.
  const [view, arg] = currentView();
  const [devs, models, rollouts] = live(await Promise.allSettled([api("/devices"), api("/models"), api("/rollouts")]));
  const parts = [devs, models, rollouts];
  const unauth = parts.find(p => p.status === "rejected" && p.reason.status === 401);
  if (unauth) throw unauth.reason;
  const errs = parts.filter(p => p.status === "rejected").map(p => p.reason.message);
  const val = p => (p.status === "fulfilled" && Array.isArray(p.value)) ? p.value : [];
  state.devices = val(devs); state.models = val(models); state.rollouts = val(rollouts);
  try {
    renderModels(state.models);
    if (view === "fleet") {
      const recent = [...state.rollouts].sort((a, b) => new Date(b.created) - new Date(a.created));
      live(await loadRolloutDevices(state.allRollouts ? recent : recent.filter(r => !(r.phase === "succeeded" || r.phase === "rolled_back")).concat(
        recent.filter(r => r.phase === "succeeded" || r.phase === "rolled_back").slice(0, MAX_FINISHED_CARDS))));
      renderRollouts(state.rollouts);
      const series = live(await api("/telemetry/series?since=30m&step=1m").catch(e => { if (e.status === 401) throw e; errs.push(e.message); return []; }));
      live(await loadDrift(series));
      renderModelCharts(series, 60);
    } else if (view === "devices") {
      await loadDeviceList(live);
    } else if (view === "device") {
      await loadDevicePage(arg, live);
    }
  } catch (e) {
    if (e.status === 401 || e instanceof Stale) throw e;
    errs.push("render: " + e.message);
  }
  const d = state.devices, rs = state.rollouts;
  const online = d.filter(x => x.presence === "online").length;
  const active = rs.filter(r => r.phase !== "succeeded" && r.phase !== "rolled_back").length;
  document.getElementById("summary").textContent = `${d.length} devices, ${online} online · ${state.models.length} model versions · ${active} active rollout(s)`;
  document.getElementById("error").textContent = errs.length ? "API error: " + [...new Set(errs)].join("; ") : "";
  document.body.dataset.loaded = "true";
}

document.getElementById("login-form").addEventListener("submit", ev => {
  ev.preventDefault();
  login(document.getElementById("login-token").value);
});
document.getElementById("logout").addEventListener("click", () => logout("Logged out."));
document.getElementById("push-form").addEventListener("submit", pushModel);
document.getElementById("rollout-form").addEventListener("submit", createRollout);
document.getElementById("ro-selector").addEventListener("input", previewSelector);
for (const id of ["filter-id", "filter-selector"]) document.getElementById(id).addEventListener("input", () => { filterEdited = true; });
document.getElementById("device-filter").addEventListener("submit", ev => {
  ev.preventDefault();
  filterEdited = false;
  const id = document.getElementById("filter-id").value.trim(), sel = document.getElementById("filter-selector").value.trim();
  const q = [id ? "id=" + encodeURIComponent(id) : "", sel ? "selector=" + encodeURIComponent(sel) : ""].filter(x => x).join("&");
  location.hash = "#/devices" + (q ? "?" + q : "");
});
document.getElementById("filter-clear").addEventListener("click", () => { filterEdited = false; location.hash = "#/devices"; });
window.addEventListener("hashchange", () => { filterEdited = false; if (me) route(); });

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
  try { me = await api("/whoami"); start(); }
  catch (e) { me = null; loginError(e.status === 401 ? "" : "Cannot reach the API: " + e.message); }
})();
