/**
 * The dashboard's live feed: while at least one /admin socket is open, one fleet snapshot a second is
 * built from Redis and this server's metrics and published on the "admin" topic (Bun pub/sub fan-out).
 */
import type { ServerWebSocket } from "bun";
import type { App } from "./app.ts";
import { type WorkerInfo, nextQueued, queueGauges, readRegistry, redisMemory } from "./fleet.ts";

export const ADMIN_TOPIC = "admin";
/** Seconds of history in each chart series. */
const SERIES_LEN = 60;
const RECENT_ROWS = 50;
const QUEUED_ROWS = 10;
const DEAD_ROWS = 20;
const ARGS_PREVIEW = 200;
/** How long a worker that stopped heartbeating stays listed as gone. */
const GONE_KEEP_MS = 10 * 60_000;
const GONE_ROWS = 20;
/** Running tasks whose state is checked against the heartbeat's list per snapshot. */
const RUNNING_CHECK = 500;

export interface TaskRow {
  id: string;
  task: string;
  state: string;
  attempts: number;
  created_at?: number;
  started_at?: number;
  finished_at?: number;
  /** finished - created: queue wait plus run time. */
  duration_ms?: number;
  error?: { code?: string; message?: string };
}

/** A worker that stopped heartbeating (killed, stopped, or cut off from Redis). */
export interface GoneWorker {
  id: string;
  host?: string;
  pid?: number;
  concurrency?: number;
  /** Its last heartbeat (ms). */
  last_seen: number;
}

export interface Snapshot {
  type: "snapshot";
  at: number;
  queue: { queued: number; delayed: number; running: number; dead: number };
  totals: Record<"submitted" | "succeeded" | "failed" | "cancelled", number>;
  workers: WorkerInfo[];
  /** Workers seen alive (by this feed, or still in the registry) whose heartbeat stopped, newest first. */
  gone: GoneWorker[];
  /** The fleet's heartbeat settings, so the page can tell a late worker from a live one. */
  config: { heartbeat_ms: number; dead_ms: number };
  /** The next tasks to be claimed, oldest first. */
  queued: TaskRow[];
  recent: TaskRow[];
  dead: { total: number; items: (TaskRow & { args: string })[] };
  series: {
    /** Tasks finished per second, fleet-wide (from the shared counters), oldest first; null before sampling began. */
    fleet: (number | null)[];
    /** Tasks submitted over this server's /ws and /async_task/ that finished, per second (Metrics.throughput). */
    server: (number | null)[];
    /** Mean submit-to-result latency (ms) of this server's /ws and /async_task/ tasks finished in each second; null when none did. */
    latency: (number | null)[];
    /** Redis's used_memory (bytes) each second, summed over a cluster's masters. */
    memory: (number | null)[];
    /** WebSockets connected to this server each second (the `sockets` gauge): idle browser tabs pile up here. */
    sockets: (number | null)[];
    /** Tasks waiting in the queues each second (queue.queued): a backlog that grows is a fleet that cannot keep up. */
    queued: (number | null)[];
  };
  /** What Redis holds now and may hold (maxmemory; null when unlimited): the whole Redis, not only taskwire's keys. */
  redis: { used_bytes: number; max_bytes: number | null };
  /** Submit-to-result percentiles (ms) since this server started; null while nothing finished or past the last bucket. */
  latency: { p50: number | null; p90: number | null; p99: number | null; count: number };
  sockets: number;
}

const TASK_FIELDS = ["task", "state", "attempts", "created", "started", "finished", "error", "args"] as const;

class AdminFeed {
  private viewers = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private ticking = false;
  private warned = false;
  private last: { at: number; finished: number; latCount: number; latSum: number } | undefined;
  private readonly fleet: (number | null)[] = [];
  private readonly latency: (number | null)[] = [];
  private readonly memory: (number | null)[] = [];
  private readonly sockets: (number | null)[] = [];
  private readonly queued: (number | null)[] = [];
  /** Workers this feed has seen alive, kept so one that vanishes (reaped, key expired) is shown as gone. */
  private readonly seen = new Map<string, GoneWorker>();

  constructor(private readonly app: App) {}

  join(ws: ServerWebSocket<any>): void {
    ws.subscribe(ADMIN_TOPIC);
    this.viewers++;
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), 1000);
      this.timer.unref();
    }
    // The newcomer gets a snapshot now rather than at the next tick; sampling is left to the tick.
    this.build().then(
      (s) => ws.readyState === 1 && ws.send(JSON.stringify(s)),
      (err) => ws.readyState === 1 && ws.send(statusFrame(err)),
    );
  }

  leave(ws: ServerWebSocket<any>): void {
    if (ws.isSubscribed(ADMIN_TOPIC)) ws.unsubscribe(ADMIN_TOPIC);
    this.viewers = Math.max(0, this.viewers - 1);
    if (this.viewers === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.last = undefined; // a gap in viewing is a gap in the series, not one long second
      this.fleet.length = 0;
      this.latency.length = 0;
      this.memory.length = 0;
      this.sockets.length = 0;
      this.queued.length = 0;
    }
  }

  private async tick(): Promise<void> {
    if (this.ticking) return; // Redis slower than a second: skip rather than pile up
    this.ticking = true;
    try {
      const snap = await this.build(true);
      this.app.server?.publish(ADMIN_TOPIC, JSON.stringify(snap));
      this.warned = false;
    } catch (err) {
      if (!this.warned) this.app.log.warn("dashboard snapshot failed", String(err));
      this.warned = true;
      this.app.server?.publish(ADMIN_TOPIC, statusFrame(err));
    } finally {
      this.ticking = false;
    }
  }

  /** Reads the fleet; with `sample`, also advances the per-second series. */
  private async build(sample = false): Promise<Snapshot> {
    const { app } = this;
    const k = app.keys;
    const [gauges, registry, recentIds, queued, deadIds, memory] = await Promise.all([
      queueGauges(app),
      readRegistry(app, GONE_ROWS),
      app.redis.lrange(k.recent, 0, RECENT_ROWS - 1),
      nextQueued(app, QUEUED_ROWS),
      app.redis.lrange(k.dead, 0, DEAD_ROWS - 1),
      redisMemory(app),
    ]);
    const workers = registry.live;
    const ids = [...new Set(recentIds)];
    const runningIds = workers.flatMap((w) => w.running.map((r) => r.id)).slice(0, RUNNING_CHECK);
    const rows = await this.taskRows([...ids, ...queued, ...deadIds, ...runningIds]);
    // A heartbeat is up to WORKER_HEARTBEAT_MS old: drop tasks it lists that have since finished.
    for (const w of workers) w.running = w.running.filter((r) => (rows.get(r.id)?.row.state ?? "running") === "running");
    const totals = { submitted: 0, succeeded: 0, failed: 0, cancelled: 0 };
    for (const [field, v] of Object.entries(gauges.stats)) {
      const outcome = field.slice(0, field.indexOf(":")) as keyof typeof totals;
      if (outcome in totals) totals[outcome] += Number(v) || 0;
    }
    const m = app.metrics;
    const finished = totals.succeeded + totals.failed + totals.cancelled;
    if (sample) this.sample(finished, m.latencyCount, m.latencySumMs, memory.used, gauges.queueDepth);
    // The first viewer's snapshot is the series' baseline: a task that ends before the first tick is charted too.
    else this.last ??= { at: performance.now(), finished, latCount: m.latencyCount, latSum: m.latencySumMs };
    const pct = (p: number) => {
      const v = m.percentile(p);
      return m.latencyCount === 0 || !Number.isFinite(v) ? null : v;
    };
    return {
      type: "snapshot",
      // Redis's clock, as every time shown with it (heartbeats, task times): ages stay right when this host's clock is off.
      at: registry.now,
      queue: { queued: gauges.queueDepth, delayed: gauges.delayed, running: workers.reduce((n, w) => n + w.running.length, 0), dead: gauges.dead },
      totals,
      workers: workers.sort((a, b) => a.started - b.started || a.id.localeCompare(b.id)),
      gone: this.gone(workers, registry.silent, registry.now),
      config: { heartbeat_ms: app.config.WORKER_HEARTBEAT_MS, dead_ms: app.config.WORKER_DEAD_MS },
      queued: queued.flatMap((id) => rows.get(id)?.row ?? []),
      recent: ids.flatMap((id) => rows.get(id)?.row ?? []),
      dead: {
        total: gauges.dead,
        items: deadIds.flatMap((id) => {
          const r = rows.get(id);
          return r ? [{ ...r.row, args: preview(r.args) }] : [];
        }),
      },
      series: { fleet: pad(this.fleet), server: pad(m.throughput.slice(-SERIES_LEN)), latency: pad(this.latency), memory: pad(this.memory), sockets: pad(this.sockets), queued: pad(this.queued) },
      redis: { used_bytes: memory.used, max_bytes: memory.max },
      latency: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), count: m.latencyCount },
      sockets: app.sockets.size,
    };
  }

  /** Remembers live workers; returns those no longer live: still registered with an old heartbeat, or vanished. */
  private gone(live: WorkerInfo[], silent: [string, number][], now: number): GoneWorker[] {
    const liveIds = new Set(live.map((w) => w.id));
    for (const w of live) this.seen.set(w.id, { id: w.id, host: w.host, pid: w.pid, concurrency: w.concurrency, last_seen: w.last_seen });
    for (const [id, last_seen] of silent) if (!this.seen.has(id)) this.seen.set(id, { id, last_seen });
    const out: GoneWorker[] = [];
    for (const [id, w] of this.seen) {
      if (liveIds.has(id)) continue;
      if (now - w.last_seen > GONE_KEEP_MS) this.seen.delete(id);
      else out.push(w);
    }
    return out.sort((a, b) => b.last_seen - a.last_seen).slice(0, GONE_ROWS);
  }

  private sample(finished: number, latCount: number, latSum: number, memoryUsed: number, queued: number): void {
    push(this.memory, memoryUsed);
    push(this.sockets, this.app.sockets.size);
    push(this.queued, queued);
    const now = performance.now();
    const prev = this.last;
    this.last = { at: now, finished, latCount, latSum };
    if (!prev) return;
    const secs = Math.max((now - prev.at) / 1000, 0.001);
    push(this.fleet, Math.max(0, Math.round((finished - prev.finished) / secs)));
    const n = latCount - prev.latCount;
    push(this.latency, n > 0 ? Math.round(((latSum - prev.latSum) / n) * 10) / 10 : null);
  }

  private async taskRows(ids: string[]): Promise<Map<string, { row: TaskRow; args?: string }>> {
    const unique = [...new Set(ids)];
    const out = new Map<string, { row: TaskRow; args?: string }>();
    if (unique.length === 0) return out;
    // One read per task (not a pipeline): on a cluster each task has its own slot.
    const res = await Promise.all(unique.map((id) => this.app.redis.hmget(this.app.keys.task(id), ...TASK_FIELDS)));
    unique.forEach((id, i) => {
      const [task, state, attempts, created, started, finished, error, args] = res[i] ?? [];
      if (!state) return; // expired since it was listed
      const num = (s: string | null | undefined) => (s ? Number(s) : undefined);
      const row: TaskRow = { id, task: task ?? "", state, attempts: Number(attempts ?? 0) };
      row.created_at = num(created);
      row.started_at = num(started);
      row.finished_at = num(finished);
      if (row.finished_at !== undefined && row.created_at !== undefined) row.duration_ms = row.finished_at - row.created_at;
      if (error && state !== "succeeded") row.error = parseError(error);
      out.set(id, { row, args: args ?? undefined });
    });
    return out;
  }
}

function push(series: (number | null)[], v: number | null): void {
  series.push(v);
  if (series.length > SERIES_LEN) series.shift();
}

/** Left-pads to SERIES_LEN with nulls so every chart has the same time axis. */
function pad(values: (number | null)[]): (number | null)[] {
  return values.length >= SERIES_LEN ? values.slice(-SERIES_LEN) : [...new Array<null>(SERIES_LEN - values.length).fill(null), ...values];
}

function preview(args: string | undefined): string {
  if (!args) return "";
  return args.length > ARGS_PREVIEW ? `${args.slice(0, ARGS_PREVIEW)}…` : args;
}

function parseError(s: string): TaskRow["error"] {
  try {
    const e = JSON.parse(s) as unknown;
    if (e && typeof e === "object") {
      const { code, message } = e as Record<string, unknown>;
      return { code: typeof code === "string" ? code : undefined, message: typeof message === "string" ? message : undefined };
    }
  } catch {
    // written by another build: show it raw below
  }
  return { message: s.slice(0, 500) };
}

function statusFrame(err: unknown): string {
  return JSON.stringify({ type: "status", ok: false, message: `snapshot failed: ${err instanceof Error ? err.message : String(err)}` });
}

const feeds = new WeakMap<App, AdminFeed>();

/** The one feed of this App (created on first use). */
export function adminFeed(app: App): AdminFeed {
  let f = feeds.get(app);
  if (!f) feeds.set(app, (f = new AdminFeed(app)));
  return f;
}
