// The dashboard: renders the /admin feed's snapshots (one a second, pushed) and runs tasks through the SDK from /client.js.

// --- token and URLs: ?token= on the page is passed on to every WebSocket and HTTP call ---

const token = new URLSearchParams(location.search).get("token");

/** An address relative to the page (so a reverse-proxy prefix keeps working), with the token. */
function url(path, scheme) {
  const u = new URL(path, location.href);
  if (scheme === "ws") u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  if (token) u.searchParams.set("token", token);
  return u.href;
}

// --- small DOM and format helpers ---

const $ = (sel) => document.querySelector(sel);

/** h("td", {class: "num"}, "3") -> <td class="num">3</td>; children may be strings, nodes, arrays or null. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false).map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

function fill(tbody, rows, columns, emptyText) {
  tbody.replaceChildren(...(rows.length ? rows : [h("tr", null, h("td", { colspan: columns, class: "empty" }, emptyText))]));
}

const shortId = (id) => (id.length > 13 ? `…${id.slice(-8)}` : id);
const badge = (state) => h("span", { class: `state ${state}` }, state);

function ms(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v < 1) return `${v.toFixed(2)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(v < 10_000 ? 2 : 1)} s`;
  return `${Math.floor(v / 60_000)} m ${Math.round((v % 60_000) / 1000)} s`;
}

/** Bytes in binary units, as Redis's own *_human figures. */
function bytes(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

function ago(t, now) {
  if (!t) return "–";
  const s = Math.max(0, (now - t) / 1000);
  if (s < 1) return "now";
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return new Date(t).toLocaleTimeString();
}

// --- live feed: /admin pushes a snapshot a second; reconnect with backoff if it drops ---

let feedAttempt = 0;

function openFeed() {
  const ws = new WebSocket(url("admin", "ws"));
  ws.onopen = () => {
    feedAttempt = 0;
    setConn("live", "live");
  };
  ws.onmessage = (e) => {
    let msg;
    try {
      msg = JSON.parse(e.data);
    } catch {
      return;
    }
    if (msg.type === "snapshot") render(msg);
    else if (msg.type === "status") showFeedError(msg.ok ? "" : msg.message);
  };
  ws.onclose = () => {
    setConn("reconnecting", "reconnecting…");
    const delay = Math.min(10_000, 250 * 2 ** feedAttempt++) * (0.5 + Math.random() / 2);
    setTimeout(openFeed, delay);
  };
}

function setConn(state, text) {
  $("#conn").dataset.state = state;
  $("#conn-text").textContent = text;
}

function showFeedError(message) {
  const el = $("#feed-error");
  el.hidden = !message;
  el.textContent = message || "";
}

// --- rendering one snapshot ---

function render(s) {
  showFeedError("");
  const now = s.at;
  const t = s.totals;
  $("#totals").replaceChildren(
    ...[["submitted", t.submitted], ["succeeded", t.succeeded], ["failed", t.failed], ["cancelled", t.cancelled], ["sockets", s.sockets]]
      .map(([k, v]) => h("div", null, h("dt", null, k), h("dd", null, v))),
  );
  renderQueues(s);
  renderWorkers(s, now);
  renderCharts(s);
  renderRecent(s, now);
  renderDead(s, now);
}

function renderQueues(s) {
  const q = s.queue;
  fill($("#queues tbody"), [h("tr", null, h("td", null, "default"), ...[q.queued, q.delayed, q.running, q.dead].map((n) => h("td", { class: "num" }, n)))], 5);
  $("#next-up").replaceChildren(...s.queued.map((r) => h("li", null, h("code", null, r.task), " ", h("span", { class: "muted" }, shortId(r.id)))));
}

function renderWorkers(s, now) {
  const late = s.config.heartbeat_ms * 2.5;
  const live = s.workers.map((w) => {
    const age = now - w.last_seen;
    const status = age > late ? "late" : "alive";
    const pct = Math.min(100, (w.running.length / w.concurrency) * 100);
    return h("tr", { "data-worker": w.id, "data-pid": w.pid, class: status },
      h("td", null, h("code", null, `${w.host}:${w.pid}`)),
      h("td", { class: "status" }, badge(status)),
      h("td", null, h("span", { class: "load" }, h("span", { class: "bar" }, h("i", { style: `width:${pct}%` })), `${w.running.length}/${w.concurrency}`)),
      h("td", null, w.running.length
        ? h("span", { class: "running-list" }, w.running.slice(0, 4).map((r) => h("span", null, h("code", null, r.task), ` ${shortId(r.id)} · ${ms(now - r.started)}${r.attempt > 1 ? ` · try ${r.attempt}` : ""}`)), w.running.length > 4 ? h("span", { class: "muted" }, `+${w.running.length - 4} more`) : null)
        : h("span", { class: "muted" }, "idle")),
      h("td", { class: "num" }, ago(w.last_seen, now)),
    );
  });
  const gone = s.gone.map((w) =>
    h("tr", { "data-worker": w.id, "data-pid": w.pid ?? "", class: "gone" },
      h("td", null, h("code", null, w.host ? `${w.host}:${w.pid}` : shortId(w.id))),
      h("td", { class: "status" }, badge("gone")),
      h("td", null, w.concurrency ? `–/${w.concurrency}` : "–"),
      h("td", null, "no heartbeat; its tasks go back to the queue"),
      h("td", { class: "num" }, ago(w.last_seen, now)),
    ));
  fill($("#workers tbody"), [...live, ...gone], 5, "no workers: start one with `bun run worker.ts`");
  $("#workers-count").textContent = `${s.workers.length} alive${s.gone.length ? ` · ${s.gone.length} gone` : ""}`;
}

function renderCharts(s) {
  const fleet = s.series.fleet;
  const last = [...fleet].reverse().find((v) => v !== null);
  $("#tp-now").textContent = last === undefined ? "" : `${last}/s`;
  drawChart($("#tp-chart"), fleet, "fleet", (v) => `${v}/s`);
  const lat = s.series.latency;
  const lastLat = [...lat].reverse().find((v) => v !== null);
  $("#lat-now").textContent = lastLat === undefined ? "" : ms(lastLat);
  drawChart($("#lat-chart"), lat, "lat", ms);
  const p = s.latency;
  $("#lat-pct").textContent = p.count ? `p50 ≤ ${ms(p.p50)} · p90 ≤ ${ms(p.p90)} · p99 ≤ ${ms(p.p99)} over ${p.count}` : "no tasks finished here yet";
  // With a maxmemory the chart's top is that limit, so the area shows how full Redis is.
  const r = s.redis;
  const full = r.max_bytes ? r.used_bytes / r.max_bytes : null;
  $("#mem-now").textContent = bytes(r.used_bytes) + (full === null ? "" : ` · ${Math.round(full * 100)} %`);
  $("#mem-card").classList.toggle("warn", full !== null && full >= 0.8);
  drawChart($("#mem-chart"), s.series.memory, "mem", bytes, r.max_bytes ?? undefined);
  $("#mem-limit").textContent = r.max_bytes
    ? `maxmemory ${bytes(r.max_bytes)}${full >= 0.8 ? ": nearly full; a full Redis refuses submits (README \"Sizing Redis\")" : ""}`
    : "no maxmemory set: Redis grows until the machine runs out";
  $("#sock-now").textContent = String(s.sockets);
  drawChart($("#sock-chart"), s.series.sockets, "sock", String);
  $("#q-now").textContent = String(s.queue.queued);
  drawChart($("#q-chart"), s.series.queued, "q", String);
}

const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs) => {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
};

/** The next 1, 2 or 5 times a power of ten at or above v: a round top for a chart's scale. */
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v);
}

/** A 60-point line and area chart; nulls (no sample yet, or nothing finished) break the line. `ceiling`: a fixed top. */
function drawChart(el, values, kind, label, ceiling) {
  const W = 300, H = 110, top = 12, bottom = 100;
  const max = ceiling ?? niceCeil(Math.max(1, ...values.filter((v) => v !== null)) * 1.1);
  const x = (i) => (i / Math.max(1, values.length - 1)) * W;
  const y = (v) => bottom - (v / max) * (bottom - top);
  el.setAttribute("class", `chart ${kind}`);
  const parts = [svg("line", { class: "grid-line", x1: 0, x2: W, y1: bottom, y2: bottom }), svg("line", { class: "grid-line", x1: 0, x2: W, y1: top, y2: top })];
  let run = [];
  const flush = () => {
    if (run.length === 1) run.unshift([run[0][0] - W / 60, run[0][1]]); // a lone sample: a short step, not an invisible point
    if (run.length > 1) {
      const pts = run.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" ");
      parts.push(svg("polygon", { class: "area", points: `${run[0][0]},${bottom} ${pts} ${run.at(-1)[0]},${bottom}` }));
      parts.push(svg("polyline", { class: "line", points: pts }));
    }
    run = [];
  };
  values.forEach((v, i) => (v === null ? flush() : run.push([x(i), y(v)])));
  flush();
  el.replaceChildren(...parts);
  // Labels are HTML beside the stretched SVG, so their text is not distorted.
  const box = el.parentElement;
  const empty = values.every((v) => v === null);
  // With nothing drawn, a scale top would be made up (the 1 it falls back to, rounded up): only a fixed ceiling is shown.
  box.querySelector(".chart-max").textContent = empty && ceiling === undefined ? "" : label(max);
  box.querySelector(".chart-note").textContent = empty
    ? (kind === "lat" ? "no task finished here in the last minute" : "sampling… one point a second")
    : "";
}

const RECENT_ROWS = 25;

function renderRecent(s, now) {
  const running = s.workers.flatMap((w) => w.running.map((r) => ({ id: r.id, task: r.task, state: "running", attempts: r.attempt, started_at: r.started })));
  const rows = [...running, ...s.queued, ...s.recent].slice(0, RECENT_ROWS).map((r) =>
    h("tr", { "data-task": r.id },
      h("td", null, h("code", null, r.task)),
      h("td", null, h("code", { title: r.id }, shortId(r.id))),
      h("td", null, badge(r.state)),
      h("td", { class: "num" }, r.attempts),
      h("td", { class: "num" }, r.duration_ms !== undefined ? ms(r.duration_ms) : r.started_at ? ms(now - r.started_at) : "–"),
      h("td", { class: "num" }, ago(r.finished_at ?? r.started_at ?? r.created_at, now)),
      h("td", { class: "error-text" }, r.error ? `${r.error.code ? `${r.error.code}: ` : ""}${r.error.message ?? ""}` : ""),
    ));
  fill($("#recent tbody"), rows, 7, "no tasks yet");
}

/** Dead-letter ids retried from this page, so their rows stay disabled until the feed drops them. */
const retried = new Set();

function renderDead(s, now) {
  $("#dead-total").textContent = s.dead.total ? `${s.dead.total}` : "";
  const rows = s.dead.items.map((r) =>
    h("tr", { "data-dead": r.id },
      h("td", null, h("code", null, r.task)),
      h("td", null, h("code", { title: r.id }, shortId(r.id))),
      h("td", { class: "error-text" }, r.error?.message ?? ""),
      h("td", { class: "args" }, h("code", null, r.args)),
      h("td", { class: "num" }, r.attempts),
      h("td", { class: "num" }, ago(r.finished_at, now)),
      h("td", null, h("button", { class: "small secondary retry", type: "button", disabled: retried.has(r.id), onclick: (e) => retry(r.id, e.currentTarget) }, retried.has(r.id) ? "retrying…" : "Retry")),
    ));
  fill($("#dead tbody"), rows, 7, "no dead letters");
}

async function retry(id, button) {
  button.disabled = true;
  button.textContent = "retrying…";
  retried.add(id);
  const res = await fetch(url(`dead/${encodeURIComponent(id)}/retry`), { method: "POST" }).catch(() => undefined);
  if (!res || res.status !== 202) {
    retried.delete(id);
    button.disabled = false;
    button.textContent = "Retry";
    const body = res ? await res.json().catch(() => ({})) : {};
    showFeedError(`retry of ${id} failed: ${body.error?.message ?? "the server did not answer"}`);
  }
}

// --- run a task: a form generated from GET /tasks/schema, run over /ws with the SDK ---

let tasks = [];
let tw;
let current;

async function setupRunForm() {
  const res = await fetch(url("tasks/schema"));
  if (!res.ok) return showRunError(`GET /tasks/schema: HTTP ${res.status}`);
  tasks = await res.json();
  const select = $("#run-task");
  select.replaceChildren(...tasks.map((t) => h("option", { value: t.name }, t.name)));
  select.addEventListener("change", showFields);
  showFields();
  const { connect } = await import(url("client.js"));
  tw = connect(url("ws"), { token: token ?? undefined });
  $("#run-submit").disabled = false;
  $("#run-form").addEventListener("submit", (e) => {
    e.preventDefault();
    runTask();
  });
  $("#run-cancel").addEventListener("click", () => current?.run.cancel());
}

function showFields() {
  const t = tasks.find((x) => x.name === $("#run-task").value);
  $("#run-desc").textContent = t?.description ?? "";
  const props = t?.args?.properties ?? {};
  const required = new Set(t?.args?.required ?? []);
  $("#run-fields").replaceChildren(...Object.entries(props).map(([name, schema]) => field(name, schema, required.has(name))));
}

function kindOf(schema) {
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : (schema.anyOf ?? []).map((s) => s.type);
  if (schema.enum) return "enum";
  if (types.length === 1 && (types[0] === "integer" || types[0] === "number")) return "number";
  if (types.length === 1 && types[0] === "boolean") return "boolean";
  if (types.length === 1 && types[0] === "string") return "string";
  if (types.every((x) => x === "string" || x === "number" || x === "integer")) return "scalar";
  return "json";
}

function field(name, schema, required) {
  const kind = kindOf(schema);
  const attrs = { name: `arg-${name}`, "data-arg": name, "data-kind": kind, required: required && kind !== "boolean" };
  let input;
  if (kind === "enum") input = h("select", attrs, schema.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))));
  else if (kind === "boolean") input = h("input", { ...attrs, type: "checkbox", checked: schema.default === true });
  else if (kind === "json") input = h("textarea", { ...attrs, placeholder: "JSON" });
  else {
    const range = schema.minimum !== undefined || schema.maximum !== undefined ? `${schema.minimum ?? ""} – ${schema.maximum ?? ""}` : "";
    input = h("input", {
      ...attrs,
      type: kind === "number" ? "number" : "text",
      min: schema.minimum, max: schema.maximum, step: schema.type === "integer" ? 1 : kind === "number" ? "any" : undefined,
      maxlength: schema.maxLength, placeholder: range || (kind === "scalar" ? "text or number" : ""), value: schema.default,
    });
  }
  return h("label", { class: "field" }, h("span", null, name, required ? h("b", null, " *") : null), input);
}

/** The form's values as args; empty optional fields are left out so the task's defaults apply. */
function readArgs() {
  const args = {};
  for (const el of $("#run-fields").querySelectorAll("[data-arg]")) {
    const name = el.dataset.arg;
    const kind = el.dataset.kind;
    if (kind === "boolean") {
      args[name] = el.checked;
      continue;
    }
    const raw = el.value.trim();
    if (raw === "") continue;
    if (kind === "number") args[name] = Number(raw);
    else if (kind === "string") args[name] = el.value;
    else if (kind === "scalar") args[name] = raw !== "" && Number.isFinite(Number(raw)) ? Number(raw) : el.value;
    else {
      try {
        args[name] = JSON.parse(raw);
      } catch {
        throw new Error(`${name}: not valid JSON`);
      }
    }
  }
  return args;
}

function showRunError(message) {
  const el = $("#run-error");
  el.hidden = !message;
  el.textContent = message || "";
}

/** A fraction 0..1 from common progress shapes ({step, of}, {done, total}, {percent}, 0..1), or null. */
function fraction(d) {
  if (typeof d === "number") return d >= 0 && d <= 1 ? d : null;
  if (!d || typeof d !== "object") return null;
  const done = d.step ?? d.done ?? d.current ?? d.completed;
  const total = d.of ?? d.total;
  if (typeof done === "number" && typeof total === "number" && total > 0) return Math.min(1, Math.max(0, done / total));
  if (typeof d.percent === "number") return Math.min(1, Math.max(0, d.percent / 100));
  return null;
}

function setProgress(state, f, text) {
  const bar = $("#run-progress");
  bar.className = `progress ${state}${f === null && state === "running" ? " indeterminate" : ""}`;
  const pct = f === null ? (state === "succeeded" ? 100 : 0) : Math.round(f * 100);
  bar.querySelector(".fill").style.width = `${pct}%`;
  bar.setAttribute("aria-valuenow", String(pct));
  $("#run-progress-text").textContent = text;
  const badgeEl = $("#run-state");
  badgeEl.className = `state ${state}`;
  badgeEl.textContent = state;
}

async function runTask() {
  showRunError("");
  let args;
  try {
    args = readArgs();
  } catch (err) {
    return showRunError(err.message);
  }
  const name = $("#run-task").value;
  const run = tw.submit(name, args);
  const mine = { run };
  current = mine;
  $("#run-out").hidden = false;
  $("#run-id").textContent = "";
  $("#run-result").textContent = "";
  setProgress("queued", 0, "submitted…");
  $("#run-cancel").disabled = false;
  run.id.then((id) => current === mine && ($("#run-id").textContent = id), () => {});
  run.on("progress", (e) => {
    if (current !== mine) return;
    const f = fraction(e.data);
    const d = e.data;
    const text = d && typeof d === "object" && typeof d.step === "number" && typeof d.of === "number" ? `${d.step} / ${d.of}` : JSON.stringify(d);
    setProgress("running", f, text);
  });
  run.on("queued", () => current === mine && setProgress("queued", null, "back in the queue (retry, or its worker died)"));
  try {
    const result = await run.result;
    if (current !== mine) return;
    setProgress("succeeded", 1, $("#run-progress-text").textContent || "done");
    $("#run-result").textContent = JSON.stringify(result, null, 2);
  } catch (err) {
    if (current !== mine) return;
    const state = err.code === "cancelled" ? "cancelled" : err.name === "RequestRefusedError" ? "refused" : "failed";
    const keep = Number($("#run-progress").getAttribute("aria-valuenow") || 0) / 100;
    setProgress(state, keep, $("#run-progress-text").textContent);
    $("#run-result").textContent = `${err.code}: ${err.message}${err.issues ? `\n${err.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`).join("\n")}` : ""}`;
  } finally {
    if (current === mine) $("#run-cancel").disabled = true;
  }
}

openFeed();
setupRunForm().catch((err) => showRunError(`the run form could not start: ${err.message}`));
