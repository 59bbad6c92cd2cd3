/**
 * taskwire's load generator: speaks PROTOCOL.md only, checks that every result arrives exactly once
 * with the right value, and prints one JSON result line on stdout (progress goes to stderr). Usage: USAGE
 * below, or `bun run bench/load.ts --help`.
 */
import { parseArgs } from "node:util";
import { startClock } from "./clock.ts";
import { type Pids, cpuSince, fdLimit, machineJiffies, snapshot, statusKb, wakes } from "./procstat.ts";
import { connectRaw, type RawWs } from "./rawws.ts";
import { type Percentiles, Samples } from "./stats.ts";

export type Mode = "ws-closed" | "ws-open" | "async" | "async-seq" | "connections";
export const MODES: Mode[] = ["ws-closed", "ws-open", "async", "async-seq", "connections"];

export interface Violations {
  /** A result (or accepted) for the same task more than once. */
  duplicates: number;
  /** A result whose value is not the task_id sent. */
  wrongValue: number;
  /** Submitted, but no result within the drain time. */
  missing: number;
  /** `error` / `failed` frames, and seed-protocol error rows, by code. */
  errors: Record<string, number>;
  /** Frames that break the protocol's order (event before `accepted`, unknown id, bad close code). */
  unexpected: number;
  /** Sockets that closed when they should not have. */
  closes: number;
}

export interface LoadResult {
  mode: Mode;
  params: Record<string, number | string>;
  /** Length of the measured window (after warm-up), seconds. */
  seconds: number;
  /** Tasks whose result arrived inside the measured window (open loop: whose intended send time was). */
  tasks: number;
  throughput: number;
  /** Submit-to-result (open loop: intended-send-to-result; async: connect-to-result), ms. */
  latency: Percentiles;
  /** Open loop and async: from the frame actually being sent, ms. */
  latencyFromSend?: Percentiles;
  /** CPU ms over the measured window per role, and per task summed over roles. */
  cpuMs: Record<string, number>;
  cpuPerTaskMs?: number;
  /** Times each watched process was woken in the window (procstat.ts wakes()). */
  wakes?: Record<string, number>;
  /** Every result checked, warm-up and drain included. */
  verified: number;
  violations: Violations;
  ok: boolean;
  extra: Record<string, number | string>;
}

interface Options {
  url: string;
  seconds: number;
  warmup: number;
  sockets: number;
  inflight: number;
  rate: number;
  payload: number;
  pids: Pids;
  drainMs: number;
  sources: number;
  perSource: number;
  quiet: boolean;
}

// --- shared ---

const now = () => performance.now();

function newViolations(): Violations {
  return { duplicates: 0, wrongValue: 0, missing: 0, errors: {}, unexpected: 0, closes: 0 };
}

function violationCount(v: Violations): number {
  return v.duplicates + v.wrongValue + v.missing + v.unexpected + v.closes + Object.values(v.errors).reduce((a, b) => a + b, 0);
}

function bump(rec: Record<string, number>, k: string): void {
  rec[k] = (rec[k] ?? 0) + 1;
}

function progress(o: Options, line: string): void {
  if (!o.quiet) process.stderr.write(`  ${line}\n`);
}

/** The value test_task must hand back for task number n: a number, or a string of exactly `payload` chars. */
function taskValue(n: number, payload: number): number | string {
  if (payload <= 0) return n;
  const head = `${n}-`;
  return head + "x".repeat(Math.max(0, payload - head.length));
}

function wsUrl(o: Options, path: string): string {
  return o.url.replace(/^http/, "ws").replace(/\/$/, "") + path;
}

function openWs(url: string, timeoutMs = 10_000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const t = setTimeout(() => (ws.close(), reject(new Error(`could not open ${url} within ${timeoutMs} ms`))), timeoutMs);
    ws.onopen = () => (clearTimeout(t), resolve(ws));
    ws.onerror = () => (clearTimeout(t), reject(new Error(`could not open ${url}`)));
  });
}

function selfCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The measured window: [start, end) on performance.now(), and the CPU snapshot taken at its start. */
class Window {
  start = Infinity;
  end = Infinity;
  /** CPU ms each watched process spent in the window. */
  cpuMs: Record<string, number> = {};
  /** Times each watched process was woken in the window. */
  wakes: Record<string, number> = {};
  /** This load generator's own CPU ms over the window (not part of the per-task figure). */
  selfCpuMs = 0;
  /** Share of the whole machine's CPU (all cores) that was busy over the window, %: near 100 means saturated. */
  machineBusyPct = NaN;
  private cpu0: Record<string, number> = {};
  private wakes0: Record<string, number> = {};
  private self0 = 0;
  private machine0 = { busy: 0, total: 0 };

  constructor(private readonly pids: Pids) {}

  open(): void {
    this.start = now();
    this.cpu0 = snapshot(this.pids);
    this.wakes0 = this.countWakes();
    this.self0 = selfCpu();
    this.machine0 = machineJiffies();
  }
  close(): void {
    this.end = now();
    this.cpuMs = cpuSince(this.pids, this.cpu0);
    const w = this.countWakes();
    this.wakes = Object.fromEntries(Object.keys(w).map((role) => [role, w[role]! - this.wakes0[role]!]));
    this.selfCpuMs = selfCpu() - this.self0;
    const m = machineJiffies();
    this.machineBusyPct = (100 * (m.busy - this.machine0.busy)) / (m.total - this.machine0.total);
  }
  has(t: number): boolean {
    return t >= this.start && t < this.end;
  }
  private countWakes(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.pids).map(([role, pid]) => [role, wakes(pid)]));
  }
}

/** Runs the warm-up, then the measured window (opening and closing `win`), printing progress each second. */
async function timeline(o: Options, win: Window, count: () => number, extra: () => string = () => ""): Promise<void> {
  let last = count();
  let lastT = now();
  const phase = async (name: string, seconds: number) => {
    const end = now() + seconds * 1000;
    for (let s = 1; end - now() > 5; s++) {
      await Bun.sleep(Math.max(0, Math.min(lastT + 1000, end) - now()));
      const c = count();
      const t = now();
      progress(o, `${name} ${s}: ${Math.round(((c - last) * 1000) / Math.max(1, t - lastT))} tasks/s ${extra()}`);
      last = c;
      lastT = t;
    }
  };
  if (o.warmup > 0) await phase("warm-up", o.warmup);
  win.open();
  await phase("measure", o.seconds);
  win.close();
}

// --- /ws: one client socket and its verification ---

interface Pending {
  n: number;
  expected: number | string;
  intended: number;
  sent: number;
  id?: string;
}

class WsClient {
  private readonly byRef = new Map<string, Pending>();
  private readonly byId = new Map<string, Pending>();
  private readonly done = new Set<string>();
  inflight = 0;
  closedUnexpectedly = false;
  private closing = false;

  constructor(
    readonly ws: WebSocket,
    private readonly idx: number,
    private readonly v: Violations,
    /** Called with each verified result: the pending submit, the arrival time. */
    private readonly onResult: (p: Pending, at: number) => void,
  ) {
    ws.onmessage = (e) => this.onFrame(typeof e.data === "string" ? e.data : "");
    ws.onclose = () => {
      if (!this.closing) {
        this.closedUnexpectedly = true;
        v.closes++;
      }
    };
  }

  submit(n: number, payload: number, intended = now()): void {
    const p: Pending = { n, expected: taskValue(n, payload), intended, sent: now() };
    const ref = `${this.idx}.${n}`;
    this.byRef.set(ref, p);
    this.inflight++;
    this.ws.send(JSON.stringify({ type: "submit", ref, task: "test_task", args: { task_id: p.expected } }));
  }

  outstanding(): number {
    return this.inflight;
  }

  close(): void {
    this.closing = true;
    this.ws.close();
  }

  private onFrame(raw: string): void {
    const at = now();
    let f: any;
    try {
      f = JSON.parse(raw);
    } catch {
      this.v.unexpected++;
      return;
    }
    switch (f.type) {
      case "accepted": {
        const p = this.byRef.get(f.ref);
        if (!p) return void this.v.unexpected++;
        this.byRef.delete(f.ref);
        if (typeof f.id !== "string" || this.byId.has(f.id) || this.done.has(f.id)) return void this.v.duplicates++;
        p.id = f.id;
        this.byId.set(f.id, p);
        return;
      }
      case "result": {
        const p = this.byId.get(f.id);
        if (!p) {
          if (this.done.has(f.id)) this.v.duplicates++;
          else this.v.unexpected++;
          return;
        }
        this.byId.delete(f.id);
        this.done.add(f.id);
        this.inflight--;
        if (f.result !== p.expected) this.v.wrongValue++;
        this.onResult(p, at);
        return;
      }
      case "error": {
        bump(this.v.errors, f.error?.code ?? "error");
        const p = typeof f.ref === "string" ? this.byRef.get(f.ref) : undefined;
        if (p) {
          // An error with a ref ends that submit: it will never have a result.
          this.byRef.delete(f.ref);
          this.inflight--;
          this.onResult({ ...p, n: -1 }, at);
        }
        return;
      }
      case "failed":
      case "cancelled": {
        bump(this.v.errors, f.type === "failed" ? f.error?.code ?? "failed" : "cancelled");
        const p = this.byId.get(f.id);
        if (p) {
          this.byId.delete(f.id);
          this.done.add(f.id);
          this.inflight--;
          this.onResult({ ...p, n: -1 }, at);
        }
        return;
      }
      default:
        this.v.unexpected++; // test_task has no progress events
    }
  }
}

async function openClients(o: Options, n: number, v: Violations, onResult: (c: WsClient, p: Pending, at: number) => void): Promise<WsClient[]> {
  const url = wsUrl(o, "/ws");
  const sockets = await Promise.all(Array.from({ length: n }, () => openWs(url)));
  const clients: WsClient[] = [];
  sockets.forEach((ws, i) => {
    const c: WsClient = new WsClient(ws, i, v, (p, at) => onResult(c, p, at));
    clients.push(c);
  });
  return clients;
}

/** Waits (bounded) until nothing is outstanding, then a little longer to catch duplicates; counts the rest missing. */
async function drain(o: Options, clients: WsClient[], v: Violations): Promise<void> {
  const deadline = now() + o.drainMs;
  const left = () => clients.reduce((a, c) => a + (c.closedUnexpectedly ? 0 : c.outstanding()), 0);
  while (left() > 0 && now() < deadline) await Bun.sleep(10);
  await Bun.sleep(200);
  v.missing += clients.reduce((a, c) => a + c.outstanding(), 0);
  for (const c of clients) c.close();
}

function result(mode: Mode, o: Options, params: Record<string, number | string>, win: Window, lat: Samples, v: Violations, verified: number, extra: Record<string, number | string> = {}, fromSend?: Samples): LoadResult {
  const seconds = (win.end - win.start) / 1000;
  const tasks = lat.count;
  const cpuTotal = Object.values(win.cpuMs).reduce((a, b) => a + b, 0);
  return {
    mode, params, seconds, tasks, throughput: tasks / seconds,
    latency: lat.percentiles(),
    ...(fromSend ? { latencyFromSend: fromSend.percentiles() } : {}),
    cpuMs: win.cpuMs,
    ...(Object.keys(win.cpuMs).length > 0 && tasks > 0 ? { cpuPerTaskMs: cpuTotal / tasks, wakes: win.wakes } : {}),
    verified, violations: v, ok: violationCount(v) === 0 && verified > 0,
    extra: { ...extra, loadgenCpuPerTaskMs: tasks > 0 ? round(win.selfCpuMs / tasks, 4) : 0, machineBusyPct: round(win.machineBusyPct, 1) },
  };
}

// --- modes ---

async function wsClosed(o: Options): Promise<LoadResult> {
  const v = newViolations();
  const win = new Window(o.pids);
  const lat = new Samples();
  let next = 0;
  let verified = 0;
  let running = true;
  const clients = await openClients(o, o.sockets, v, (c, p, at) => {
    if (p.n >= 0) verified++;
    if (p.n >= 0 && win.has(at)) lat.add(at - p.sent);
    if (running) c.submit(next++, o.payload);
  });
  for (const c of clients) for (let i = 0; i < o.inflight; i++) c.submit(next++, o.payload);
  await timeline(o, win, () => verified, () => `(${clients.reduce((a, c) => a + c.inflight, 0)} in flight)`);
  running = false;
  await drain(o, clients, v);
  return result("ws-closed", o, { sockets: o.sockets, inflight: o.inflight, payload: o.payload }, win, lat, v, verified);
}

async function wsOpen(o: Options): Promise<LoadResult> {
  const v = newViolations();
  const win = new Window(o.pids);
  const lat = new Samples();
  const fromSend = new Samples();
  const sendLate = new Samples();
  let verified = 0;
  const clients = await openClients(o, o.sockets, v, (_c, p, at) => {
    if (p.n < 0) return;
    verified++;
    // Counted by intended send time, so a stall that delays sending still shows up as latency.
    if (win.has(p.intended)) {
      lat.add(at - p.intended);
      fromSend.add(at - p.sent);
      sendLate.add(p.sent - p.intended);
    }
  });
  const interval = 1000 / o.rate;
  // A little in the future, so the clock thread is running by the first tick.
  const t0 = now() + 20;
  const count = Math.ceil(((o.warmup + o.seconds) * 1000) / interval);
  let lateMax = 0;
  // The clock hands over every index whose intended time has come, late ones included, so none is skipped.
  const clock = startClock({ t0, intervalMs: interval, count }, (i) => {
    const intended = t0 + i * interval;
    lateMax = Math.max(lateMax, now() - intended);
    clients[i % clients.length]!.submit(i, o.payload, intended);
  });
  await Bun.sleep(Math.max(0, t0 - now()));
  await timeline(o, win, () => verified);
  // After a stall, ticks due inside the window may still be queued: send them too (bounded), or the stall would go uncounted.
  let bound: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([clock.done, new Promise((resolve) => (bound = setTimeout(resolve, o.drainMs)))]);
  clearTimeout(bound);
  clock.stop();
  await drain(o, clients, v);
  const late = sendLate.percentiles();
  return result("ws-open", o, { rate: o.rate, sockets: o.sockets, payload: o.payload }, win, lat, v, verified,
    { sendLateMaxMs: round(lateMax), sendLateP50Ms: round(late.p50, 3), sendLateP99Ms: round(late.p99, 3) }, fromSend);
}

/** One /async_task/ task on a fresh socket: resolves with [connect-to-result, send-to-result] ms, or undefined after a violation. */
function seedTask(o: Options, n: number, v: Violations): Promise<{ at: number; total: number; fromSend: number } | undefined> {
  return new Promise((resolve) => {
    const t0 = now();
    let sent = 0;
    let frames = 0;
    let success: { at: number; total: number; fromSend: number } | undefined;
    let bad = false;
    const ws = new WebSocket(wsUrl(o, "/async_task/"));
    const guard = setTimeout(() => {
      v.missing++;
      bad = true;
      ws.close();
    }, o.drainMs);
    ws.onopen = () => {
      sent = now();
      ws.send(`{"task_id": ${n}}`);
    };
    ws.onmessage = (e) => {
      const at = now();
      frames++;
      let f: any;
      try {
        f = JSON.parse(String(e.data));
      } catch {
        v.unexpected++;
        bad = true;
        return;
      }
      if (frames === 1) {
        if (f.flag !== true || f.msg !== `task ${n} is running...` || typeof f.id !== "string") {
          if (f.flag === false) bump(v.errors, f.code ?? "error");
          else v.unexpected++;
          bad = true;
        }
      } else if (frames === 2) {
        if (f.flag !== true || f.msg !== "success") {
          bump(v.errors, f.code ?? "error");
          bad = true;
        } else if (f.data?.result !== n) {
          v.wrongValue++;
          bad = true;
        } else success = { at, total: at - t0, fromSend: at - sent };
      } else {
        v.duplicates++;
        bad = true;
      }
    };
    ws.onclose = (e) => {
      clearTimeout(guard);
      if (!bad && !success) v.missing++;
      else if (!bad && e.code !== 1000) v.unexpected++;
      resolve(bad || e.code !== 1000 ? undefined : success);
    };
  });
}

async function seed(o: Options, mode: "async" | "async-seq"): Promise<LoadResult> {
  const v = newViolations();
  const win = new Window(o.pids);
  const lat = new Samples();
  const fromSend = new Samples();
  const lanes = mode === "async-seq" ? 1 : o.sockets;
  let next = 0;
  let verified = 0;
  let running = true;
  const lane = async () => {
    while (running) {
      const r = await seedTask(o, next++, v);
      if (!r) continue;
      verified++;
      if (win.has(r.at)) {
        lat.add(r.total);
        fromSend.add(r.fromSend);
      }
    }
  };
  const all = Promise.all(Array.from({ length: lanes }, lane));
  await timeline(o, win, () => verified);
  running = false;
  await all;
  return result(mode, o, { sockets: lanes }, win, lat, v, verified, {}, fromSend);
}

async function connections(o: Options): Promise<LoadResult> {
  const v = newViolations();
  const serverPid = o.pids.server;
  const mine = fdLimit("self");
  const theirs = serverPid ? fdLimit(serverPid) : NaN;
  // Each side needs one descriptor per socket plus its own (Redis, listeners, files): keep 200 spare.
  const cap = Math.min(Number.isFinite(mine) ? mine - 200 : Infinity, Number.isFinite(theirs) ? theirs - 200 : Infinity);
  const k = Math.min(o.sockets, cap);
  if (k < o.sockets) progress(o, `capped at ${k} sockets: open-file limit (load generator ${mine}, server ${theirs}); raise ulimit -n for more`);
  const u = new URL(o.url);
  const sources = Math.max(o.sources, Math.ceil(k / o.perSource));
  // The same probe with no idle socket open first: on a host whose own tail is long, it tells what the idle
  // sockets add to the probe's latency from what the host and the stack give any task.
  const alone = await wsOpen({ ...o, sockets: 1, quiet: o.quiet });
  const rss0 = serverPid ? statusKb(serverPid, "VmRSS") : NaN;
  const t0 = now();
  const socks: RawWs[] = [];
  let failedOpen = 0;
  let firstError = "";
  let opened = 0;
  // Open in bounded batches so the server's accept queue never overflows.
  const batch = 250;
  for (let i = 0; i < k; i += batch) {
    const part = await Promise.allSettled(Array.from({ length: Math.min(batch, k - i) }, (_, j) => connectRaw({
      host: u.hostname, port: Number(u.port), path: "/ws",
      localAddress: `127.0.0.${1 + ((i + j) % sources)}`,
      onClose: () => v.closes++,
    })));
    for (const p of part) {
      if (p.status === "fulfilled") socks.push(p.value);
      else {
        failedOpen++;
        firstError ||= String(p.reason);
      }
    }
    opened = socks.length;
    if ((i / batch) % 20 === 19) progress(o, `${opened} sockets open`);
  }
  const openSeconds = (now() - t0) / 1000;
  progress(o, `${opened} idle sockets open in ${openSeconds.toFixed(1)} s from ${sources} source addresses${failedOpen ? `; ${failedOpen} failed: ${firstError}` : ""}`);
  await Bun.sleep(2_000); // let the server settle (GC, buffers) before reading its memory
  const rss1 = serverPid ? statusKb(serverPid, "VmRSS") : NaN;
  // The probe: an open loop on one more socket while the idle ones stay connected.
  const probe = await wsOpen({ ...o, sockets: 1, quiet: o.quiet });
  const rss2 = serverPid ? statusKb(serverPid, "VmRSS") : NaN;
  const closesBefore = v.closes;
  for (const s of socks) s.close();
  await Bun.sleep(500);
  v.closes = closesBefore; // closes during our own teardown are expected
  for (const r of [alone, probe]) {
    for (const [key, n] of Object.entries(r.violations.errors)) v.errors[key] = (v.errors[key] ?? 0) + n;
    v.duplicates += r.violations.duplicates;
    v.wrongValue += r.violations.wrongValue;
    v.missing += r.violations.missing;
    v.unexpected += r.violations.unexpected;
    v.closes += r.violations.closes;
  }
  v.missing += failedOpen;
  const growthKb = rss1 - rss0;
  return {
    ...probe, mode: "connections",
    params: { sockets: k, requested: o.sockets, sources, rate: o.rate },
    violations: v, ok: violationCount(v) === 0 && probe.verified > 0 && alone.verified > 0,
    verified: alone.verified + probe.verified,
    extra: {
      ...probe.extra,
      aloneP50: round(alone.latency.p50, 3), aloneP99: round(alone.latency.p99, 3),
      idleSockets: opened, openSeconds: round(openSeconds),
      rssBeforeMB: round(rss0 / 1024), rssAfterMB: round(rss1 / 1024), rssAfterProbeMB: round(rss2 / 1024),
      rssGrowthMB: round(growthKb / 1024), bytesPerSocket: opened > 0 ? Math.round((growthKb * 1024) / opened) : 0,
      rssGrowthPer20kMB: opened > 0 ? round(((growthKb / opened) * 20_000) / 1024) : 0,
      failedOpen,
    },
  };
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// --- command line ---

export const USAGE = `Usage: bun run bench/load.ts <mode> [--url http://127.0.0.1:8000] [--seconds 5] [--warmup 1] [--pids server=1,worker=2,redis=3]

Modes:
  ws-closed    N sockets (--sockets 50) x M submits in flight each (--inflight 20), test_task delay 0
  ws-open      --rate tasks/s spread over --sockets 10; latency from each task's intended send time. Paced by a
               clock thread (clock.ts), not setTimeout: Bun's timers fire up to ~1 ms late, and that lateness
               would count as latency; extra.sendLate* show how far sends still fell behind their intended time
  async        /async_task/: --sockets 50 lanes, one task per socket, a new socket per task
  async-seq    /async_task/ one task at a time (round trip)
  connections  a --rate probe on one socket alone (extra.aloneP50/aloneP99), then --sockets K idle /ws sockets
               (from --sources 127.0.0.x addresses, --per-source at most each), server RSS growth, then the same
               probe on one more socket while they are connected

  --payload B  test_task's task_id is a B-character string, so args and result are ~B bytes each
  --drain-ms   how long to wait for results still owed once the measured window ends (default 10000)
  --quiet      no progress lines on stderr

One JSON line on stdout: throughput, latency percentiles, CPU per task of each --pids process, and the
verification (duplicates, wrong values, missing results). Exit 0 when every result checked out, 1 otherwise.`;

export function parseOptions(argv: string[]): { mode: Mode; options: Options } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string", default: "http://127.0.0.1:8000" },
      seconds: { type: "string", default: "5" },
      warmup: { type: "string", default: "1" },
      sockets: { type: "string" },
      inflight: { type: "string", default: "20" },
      rate: { type: "string", default: "1000" },
      payload: { type: "string", default: "0" },
      pids: { type: "string", default: "" },
      "drain-ms": { type: "string", default: "10000" },
      sources: { type: "string", default: "1" },
      "per-source": { type: "string", default: "20000" },
      quiet: { type: "boolean", default: false },
    },
  });
  const mode = positionals[0] as Mode;
  if (!MODES.includes(mode)) throw new Error(`mode: expected one of ${MODES.join(", ")}; got ${JSON.stringify(positionals[0] ?? "")}`);
  const num = (name: string, s: string | undefined, min: number, max: number): number => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name}: expected a number from ${min} to ${max}; got ${JSON.stringify(s)}`);
    return n;
  };
  const defaultSockets = { "ws-closed": 50, "ws-open": 10, async: 50, "async-seq": 1, connections: 20_000 }[mode];
  const pids: Pids = {};
  for (const part of values.pids!.split(",").filter(Boolean)) {
    const [role, pid] = part.split("=");
    if (!role || !pid || !/^\d+$/.test(pid)) throw new Error(`--pids: expected role=pid[,role=pid...], e.g. server=123,worker=456; got ${JSON.stringify(part)}`);
    pids[role] = Number(pid);
  }
  return {
    mode,
    options: {
      url: values.url!,
      seconds: num("seconds", values.seconds, 0.1, 3600),
      warmup: num("warmup", values.warmup, 0, 600),
      sockets: num("sockets", values.sockets ?? String(defaultSockets), 1, 1_000_000),
      inflight: num("inflight", values.inflight, 1, 10_000),
      rate: num("rate", values.rate, 1, 1_000_000),
      payload: num("payload", values.payload, 0, 1 << 20),
      pids,
      drainMs: num("drain-ms", values["drain-ms"], 100, 600_000),
      sources: num("sources", values.sources, 1, 254),
      perSource: num("per-source", values["per-source"], 100, 28_000),
      quiet: values.quiet!,
    },
  };
}

export function runMode(mode: Mode, o: Options): Promise<LoadResult> {
  switch (mode) {
    case "ws-closed":
      return wsClosed(o);
    case "ws-open":
      return wsOpen(o);
    case "async":
    case "async-seq":
      return seed(o, mode);
    case "connections":
      return connections(o);
  }
}

if (import.meta.main) {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    console.log(USAGE);
    process.exit(0);
  }
  let parsed;
  try {
    parsed = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n(bun run bench/load.ts --help shows every mode and flag)`);
    process.exit(2);
  }
  const r = await runMode(parsed.mode, parsed.options);
  console.log(JSON.stringify(r));
  process.exit(r.ok ? 0 : 1);
}
