/**
 * The worker loop: one loop per queue shard takes task ids (a take script, or BLMOVE when the shard is
 * empty) into this worker's processing list for that shard, then starts each with the task's own
 * script; up to `concurrency` handlers run at once, and each outcome is written with one task script
 * (the progress and outcome scripts of one turn of the event loop leave as one pipeline: lib/batch.ts).
 * A heartbeat keeps this worker alive in the registry; any live worker reaps dead ones' tasks.
 */
import { hostname } from "node:os";
import { type TaskOptions, defaultTaskOptions } from "../tasks/define.ts";
import { getTask } from "../tasks/index.ts";
import { isRedisDown } from "./errors.ts";
import type { Keys } from "./keys.ts";
import type { Logger } from "./log.ts";
import { Batch } from "./batch.ts";
import { RECONNECT_MAX_MS, type Step, isCluster, together } from "./redis.ts";
import type { Client, ScriptedRedis } from "./scripts.ts";
import { Tally } from "./tally.ts";

/** How long an outcome write keeps retrying through a Redis outage before the task is left to run again. */
const WRITE_RETRY_MS = 60_000;
/** How long a stopping worker keeps trying to hand its tasks back before leaving them to the reaper. */
const HANDBACK_RETRY_MS = 5_000;
/** Heartbeats between two checks of our own processing list for ids we hold but do not run. */
const AUDIT_EVERY = 10;

export interface WorkerSettings {
  concurrency: number;
  ttlS: number;
  heartbeatMs: number;
  deadMs: number;
  eventsMax: number;
  /** How often a task may lose its worker before it ends `exhausted`. */
  maxLosses: number;
}

export interface WorkerClients {
  command: ScriptedRedis;
  /** One per queue shard (keys.shards): a BLMOVE holds its connection. */
  blocking: Client[];
  subscriber: Client;
}

/** Run slots, handed out first come first served, so every shard's loop gets its turn. */
class Slots {
  private readonly waiting: ((ok: boolean) => void)[] = [];
  private closed = false;
  constructor(private free: number) {}

  /** Resolves true with one slot, or false once closed. */
  acquire(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.free > 0 && this.waiting.length === 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((r) => this.waiting.push(r));
  }

  /** Up to n more slots at once, unless another loop is waiting for one. */
  grab(n: number): number {
    if (this.waiting.length > 0) return 0;
    const got = Math.min(n, this.free);
    this.free -= got;
    return got;
  }

  release(n = 1): void {
    this.free += n;
    while (this.free > 0 && this.waiting.length > 0) {
      this.free--;
      this.waiting.shift()!(true);
    }
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w(false);
  }
}

/** A task a worker started: id, task name, args JSON, options JSON, attempt. */
type Started = [string, string, string, string, number];

/** Why a running handler's signal was aborted. */
class Stop extends Error {
  constructor(readonly reason: "cancelled" | "timeout" | "shutdown", message: string) {
    super(message);
    this.name = reason === "timeout" ? "TimeoutError" : "AbortError";
  }
}

interface Running {
  id: string;
  /** The queue shard it was taken from: its processing list and delayed set. */
  shard: number;
  task: string;
  attempt: number;
  started: number;
  /** Set once the handler is told to stop (its signal, if it asked for one, is aborted with the reason). */
  stopped: Stop | undefined;
  stop(s: Stop): void;
}

export class Worker {
  readonly id = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  private readonly running = new Map<string, Running>();
  private stopping = false;
  private readonly slots: Slots;
  /** Per shard, ids whose outcome is written and that still sit in our processing list: the next take drops them. */
  private readonly done: string[][];
  private readonly tally: Tally;
  /** Task scripts (progress, outcomes) of one turn go out as one pipeline, in the order written. */
  private readonly batch: Batch;
  /** Wakes close() when a handler ends. */
  private slotFree: (() => void) | undefined;
  private timers: ReturnType<typeof setInterval>[] = [];
  private loopDone: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  /** Since when heartbeats have succeeded without a break (undefined while Redis is unreachable). */
  private upSince: number | undefined;
  private lastBeat: number | undefined;
  private ticking: Promise<void> | undefined;
  private ticks = 0;
  /** Per shard, set after a reconnect (and now and then): its loop checks our processing list for orphans. */
  private readonly auditDue: boolean[];
  /** Cancels heard for ids not running here (yet): a claim whose reply is still on its way must see them. */
  private readonly earlyCancels = new Map<string, number>();
  readonly startedAt = Date.now();

  constructor(
    private readonly clients: WorkerClients,
    private readonly keys: Keys,
    private readonly settings: WorkerSettings,
    private readonly log: Logger,
  ) {
    this.slots = new Slots(settings.concurrency);
    this.batch = new Batch(clients.command);
    this.tally = new Tally(clients.command, keys, log, this.batch);
    this.auditDue = Array.from({ length: keys.shards }, () => false);
    this.done = Array.from({ length: keys.shards }, () => []);
  }

  activeKey(shard: number): string {
    return this.keys.active(this.id, shard);
  }

  async start(): Promise<void> {
    const { subscriber } = this.clients;
    subscriber.on("message", (_ch: string, msg: string) => {
      if (!msg.startsWith("cancel ")) return;
      const id = msg.slice(7);
      const r = this.running.get(id);
      if (r) return r.stop(new Stop("cancelled", "cancelled"));
      const now = Date.now();
      this.earlyCancels.set(id, now);
      for (const [old, at] of this.earlyCancels) {
        if (now - at < 10_000) break;
        this.earlyCancels.delete(old);
      }
    });
    await subscriber.subscribe(this.keys.control);
    // A reply lost while Redis restarted can leave ids in our processing list that nothing here runs.
    this.clients.command.on("ready", () => this.auditDue.fill(true));
    this.clients.blocking.forEach((c, shard) => c.on("ready", () => (this.auditDue[shard] = true)));
    await this.heartbeat();
    this.timers.push(setInterval(() => void this.tick(), this.settings.heartbeatMs));
    // Safety net for retries whose own timer died with the worker that scheduled them.
    this.timers.push(setInterval(() => void this.promote(), 1_000));
    this.loopDone = Promise.all(this.clients.blocking.map((_, shard) => this.loop(shard))).then(() => {});
  }

  /**
   * Takes from one shard. A turn holds run slots only while it takes without blocking; blocked in
   * BLMOVE it holds none, and an id BLMOVE hands it waits (taken, not started) for the next free slot.
   * After a take came back short the queue was empty: the next turn goes straight to BLMOVE, and the
   * take for the other free slots rides with the moved id's start (one round trip for both). On one
   * Redis a take also starts what it takes (one round trip); on a cluster the ids it took start next.
   */
  private async loop(shard: number): Promise<void> {
    const blocking = this.clients.blocking[shard]!;
    const queue = this.keys.queue(shard);
    const active = this.activeKey(shard);
    let failures = 0;
    let idle = false;
    while (!this.stopping) {
      let held = 0;
      try {
        // Only here, between this loop's takes, is every id in this shard's processing list one we run or one we lost track of.
        if (this.auditDue[shard]) await this.audit(shard);
        if (!(await this.slots.acquire())) break;
        // Busy: let the other handlers that end in this turn free their slots too, and take for all at once.
        if (this.running.size > 0) await new Promise((r) => setImmediate(r));
        held = 1 + this.slots.grab(this.settings.concurrency);
        let ids: string[] = [];
        let want: number | undefined = held;
        if (idle) {
          this.slots.release(held);
          held = 0;
          const moved = (await blocking.blmove(queue, active, "RIGHT", "LEFT", 2)) as string | null;
          // Timed out: the next turn takes (and drops from our list what has finished meanwhile).
          if (!moved) idle = false;
          if (!moved || this.stopping) continue; // a move that raced close() is handed back by it
          if (!(await this.slots.acquire())) break;
          held = 1 + this.slots.grab(this.settings.concurrency);
          ids = [moved];
          want = held - 1;
        }
        while (ids.length > 0 || want !== undefined) {
          const { started, taken, moved } = await this.begin(shard, ids, want);
          if (want) idle = moved < want;
          held -= started.length;
          failures = 0;
          for (const [id, task, args, opts, attempt] of started) this.run(id, shard, task, args, opts, attempt);
          ids = taken;
          want = undefined;
        }
        this.slots.release(held);
        held = 0;
      } catch (err) {
        this.slots.release(held);
        if (this.stopping) break;
        // Redis is down or restarting: back off exponentially (capped), then try again.
        failures++;
        if (failures === 1 || !isRedisDown(err)) this.log.warn("claim failed; retrying", String(err));
        await Bun.sleep(Math.min(50 * 2 ** failures, 2_000));
      }
    }
  }

  /**
   * Starts taken ids (each in its own slot) and, with `take` given, in the same round trip takes up to
   * `take` more from the shard and drops from our processing list the ids whose outcome is written. On
   * one Redis what it takes is started too; on a cluster it comes back in `taken`, for the caller to start
   * next. Ids no longer queued leave the processing list. `moved`: how many it took.
   */
  private async begin(shard: number, ids: string[], take?: number): Promise<{ started: Started[]; taken: string[]; moved: number }> {
    const { command } = this.clients;
    const k = this.keys;
    const now = Date.now();
    const ttl = this.settings.ttlS;
    const steps: Step[] = ids.map((id) => (r) => r.twStart(k.task(id), k.events(id), now, this.id, ttl));
    const taking = take !== undefined && (take > 0 || this.done[shard]!.length > 0);
    const drop = taking ? this.done[shard]!.splice(0) : [];
    const single = !isCluster(command);
    if (taking) {
      const [queue, active] = [k.queue(shard), this.activeKey(shard)];
      steps.push(single
        ? (r) => r.twTakeStart(queue, active, take ?? 0, now, this.id, ttl, k.task(""), k.events(""), ...drop)
        : (r) => r.twTake(queue, active, take ?? 0, ...drop));
    }
    let res: unknown[];
    try {
      res = await together(command, steps);
    } catch (err) {
      this.done[shard]!.push(...drop); // maybe not dropped: the next take tries again (LREM of an absent id is a no-op)
      throw err;
    }
    let taken: string[] = [];
    const started: Started[] = [];
    let moved = 0;
    if (taking && single) {
      const rows = res.pop() as (string | number)[];
      moved = Number(rows[0]);
      for (let i = 1; i + 4 < rows.length; i += 5) {
        started.push([String(rows[i]), String(rows[i + 1]), String(rows[i + 2]), String(rows[i + 3]), Number(rows[i + 4])]);
      }
    } else if (taking) {
      taken = res.pop() as string[];
      moved = taken.length;
    }
    const skipped: string[] = [];
    ids.forEach((id, i) => {
      const r = res[i] as [string, string, string, number, string] | null;
      if (r) started.push([id, r[0], r[1], r[2], r[3]]);
      else skipped.push(id);
    });
    if (skipped.length > 0) await together(command, skipped.map((id) => (r) => r.lrem(this.activeKey(shard), -1, id)));
    return { started, taken, moved };
  }

  private run(id: string, shard: number, name: string, argsJson: string, optsJson: string, attempt: number): void {
    // An AbortController costs more than a no-op task: made only for a handler that reads ctx.signal.
    let abort: AbortController | undefined;
    let reject: ((s: Stop) => void) | undefined;
    const stoppedP = new Promise<never>((_, rej) => (reject = rej));
    const r: Running = {
      id, shard, task: name, attempt, started: Date.now(), stopped: undefined,
      stop: (s) => {
        if (r.stopped) return;
        r.stopped = s;
        abort?.abort(s);
        reject!(s);
      },
    };
    this.running.set(id, r);
    if (this.earlyCancels.delete(id)) r.stop(new Stop("cancelled", "cancelled"));
    const opts = parseOptions(optsJson);
    const timer = opts.timeout_ms > 0
      ? setTimeout(() => r.stop(new Stop("timeout", `timed out after ${opts.timeout_ms} ms`)), opts.timeout_ms)
      : undefined;
    const done = (async () => {
      const def = getTask(name);
      if (!def) throw new Error(`this worker has no task named ${name}`);
      const args = def.args.parse(JSON.parse(argsJson));
      return def.run(args, {
        id, attempt,
        get signal() {
          if (!abort) {
            abort = new AbortController();
            if (r.stopped) abort.abort(r.stopped);
          }
          return abort.signal;
        },
        progress: (data) => this.progress(r, data),
      });
    })();
    const ended = Promise.race([done, stoppedP]);
    // The slot frees when the handler ends, not when its outcome is stored: concurrency bounds handlers, and a
    // slot held across the write's round trip would idle. The task stays in `running` until stored (close() waits).
    const free = () => {
      clearTimeout(timer);
      this.slots.release();
    };
    ended.then(free, free);
    ended
      .then(
        (result) => this.succeed(r, result),
        (err) => this.fail(r, err, opts),
      )
      .catch((err) => this.log.error(`could not record the outcome of ${id}`, err))
      .finally(() => {
        this.running.delete(id);
        this.slotFree?.();
        this.slotFree = undefined;
      });
    done.catch(() => {}); // after a stop the handler's own rejection is expected and unobserved
  }

  private progress(r: Running, data: unknown): void {
    if (r.stopped) return;
    const k = this.keys;
    const json = toJson(data);
    this.batch
      .one((c) => c.twProgress(k.task(r.id), k.events(r.id), k.channel(r.id), r.id, r.attempt, json, this.settings.eventsMax))
      .then((seq) => {
        if (seq === -1) r.stop(new Stop("cancelled", "cancelled"));
      })
      // Progress is best-effort: while Redis is down it is dropped (the connection error is logged once).
      .catch((err) => (isRedisDown(err) ? this.log.debug : this.log.warn)(`progress of ${r.id} not stored`, String(err)));
  }

  private async succeed(r: Running, result: unknown): Promise<void> {
    let json: string;
    try {
      json = toJson(result);
    } catch (err) {
      return this.finish(r, "failed", errorJson("task_error", `result is not JSON-serializable: ${(err as Error).message}`));
    }
    await this.finish(r, "succeeded", json);
  }

  private async fail(r: Running, err: unknown, opts: TaskOptions): Promise<void> {
    if (err instanceof Stop && err.reason === "shutdown") return; // handed back to the queue by close()
    if (err instanceof Stop && err.reason === "cancelled") return this.finish(r, "cancelled", "");
    const code = err instanceof Stop && err.reason === "timeout" ? "timeout" : "task_error";
    const message = err instanceof Error ? err.message : String(err);
    if (r.attempt <= opts.retries) {
      const base = Math.min(opts.backoff_ms * 2 ** (r.attempt - 1), opts.backoff_max_ms);
      const delay = Math.round(base * (0.5 + Math.random() * 0.5));
      const k = this.keys;
      const due = Date.now() + delay;
      // Task first, then the delayed set, then (with the next take) out of our list: a crash between
      // steps leaves the id for the reaper (or a duplicate entry, which start.lua skips), never lost.
      await this.write(`retry of ${r.id}`, () => this.batch.inOrder([
        (p) => p.twRetry(k.task(r.id), k.events(r.id), k.channel(r.id), r.id, r.attempt, errorJson(code, message), delay),
        (p) => p.zadd(k.delayed(r.shard), due, r.id),
      ]));
      this.done[r.shard]!.push(r.id);
      setTimeout(() => void this.promote(), Math.max(due - Date.now(), 0) + 5);
      return;
    }
    if (opts.retries > 0) {
      return this.finish(r, "failed", errorJson("exhausted", `${message} (gave up after ${r.attempt} attempts)`), true);
    }
    await this.finish(r, "failed", errorJson(code, message));
  }

  private async finish(r: Running, state: "succeeded" | "failed" | "cancelled", payload: string, exhausted = false): Promise<void> {
    const k = this.keys;
    const now = Date.now();
    // The final state first; the id leaves our processing list with the shard's next take (a crash before
    // leaves it to the reaper, which finds it final and drops it); then the fleet's counters.
    const seq = await this.write(`outcome of ${r.id}`, () =>
      this.batch.one((c) => c.twFinish(k.task(r.id), k.events(r.id), k.channel(r.id), r.id, state, payload, now, this.settings.ttlS)));
    this.done[r.shard]!.push(r.id);
    if (seq > 0) this.tally.finished(r.id, state, r.task, exhausted);
  }

  /**
   * Runs an outcome write, retrying while Redis is unreachable: the task stays ours (and off the
   * orphan audit) until it is written. The scripts are compare-and-set, so a repeat is harmless.
   */
  private async write<T>(what: string, op: () => Promise<T>, limitMs = WRITE_RETRY_MS): Promise<T> {
    const deadline = Date.now() + limitMs;
    for (let i = 0; ; i++) {
      try {
        return await op();
      } catch (err) {
        if (!isRedisDown(err) || Date.now() > deadline) throw err;
        if (i === 0) this.log.warn(`Redis unreachable; will keep trying to store the ${what}`);
        await Bun.sleep(Math.min(100 * 2 ** i, RECONNECT_MAX_MS));
      }
    }
  }

  private tick(): Promise<void> {
    // A slow Redis must not stack up heartbeats.
    this.ticking ??= (async () => {
      await this.heartbeat();
      await this.reap();
      if (++this.ticks % AUDIT_EVERY === 0) this.auditDue.fill(true);
    })().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async heartbeat(): Promise<void> {
    const info = JSON.stringify({
      id: this.id, host: hostname(), pid: process.pid, concurrency: this.settings.concurrency, started: this.startedAt,
      running: [...this.running.values()].map((r) => ({ id: r.id, task: r.task, attempt: r.attempt, started: r.started })),
    });
    try {
      await this.clients.command.multi()
        .zadd(this.keys.workers, Date.now(), this.id)
        .set(this.keys.worker(this.id), info, "PX", this.settings.deadMs)
        .exec();
      const now = Date.now();
      // A gap in our own beats (an outage, or this process frozen or starved) restarts the wait too.
      if (this.lastBeat !== undefined && now - this.lastBeat > this.settings.deadMs) this.upSince = now;
      this.upSince ??= now;
      this.lastBeat = now;
    } catch (err) {
      this.upSince = undefined;
      this.log.debug("heartbeat failed", String(err));
    }
  }

  /** Hands back the tasks of workers whose heartbeat is older than deadMs. */
  private async reap(): Promise<void> {
    // After an outage every heartbeat is stale: trust another worker's silence only once we have been
    // connected long enough for it to have reconnected (at most RECONNECT_MAX_MS) and beaten again.
    if (this.upSince === undefined || Date.now() - this.upSince < this.settings.deadMs + RECONNECT_MAX_MS) return;
    const k = this.keys;
    try {
      const dead = await this.clients.command.zrangebyscore(k.workers, "-inf", Date.now() - this.settings.deadMs);
      for (const wid of dead) {
        if (wid === this.id) continue;
        const n = await this.requeue(wid, "lost");
        if (n >= 0) this.log.warn(`worker ${wid} is gone; ${n} of its tasks went back to the queue`);
      }
    } catch (err) {
      this.log.debug("reap failed", String(err));
    }
  }

  /** Hands back ids in our processing list for `shard` that no handler here runs. Called by that shard's loop only. */
  private async audit(shard: number): Promise<void> {
    this.auditDue[shard] = false;
    let n: number;
    try {
      // Ids whose outcome is written (finished, or waiting in the delayed set) are not orphans.
      n = await this.requeue(this.id, "orphan", [shard], new Set([...this.running.keys(), ...this.done[shard]!]));
    } catch (err) {
      this.auditDue[shard] = true; // Redis still down: try again on the next turn
      throw err;
    }
    if (n > 0) this.log.warn(`${n} tasks taken but not run here (a reply lost to a Redis outage) went back to the queue`);
  }

  /**
   * Hands the tasks in worker `wid`'s processing lists back to their queue shards. Per shard: each task's
   * script decides (a `queued` event, or a final state), then one MULTI in the shard's slot puts the ids
   * back on the queue and takes them out of the processing list (lost, shutdown: drops the list). Shard 0
   * goes last: its slot also holds the registry, whose entry leaves in the same MULTI. A crash anywhere
   * leaves the rest for the next run, which finds each task already handled.
   * Returns how many went back on a queue; -1 (lost) when the worker's heartbeat key is alive again.
   */
  private async requeue(wid: string, mode: "lost" | "shutdown" | "orphan", shards?: number[], keep = new Set<string>()): Promise<number> {
    const k = this.keys;
    const c = this.clients.command;
    if (mode === "lost" && (await c.exists(k.worker(wid))) === 1) return -1;
    const order = shards ?? Array.from({ length: k.shards }, (_, i) => k.shards - 1 - i);
    const now = Date.now();
    let pushed = 0;
    for (const shard of order) {
      const active = k.active(wid, shard);
      const ids = [...new Set(await c.lrange(active, 0, -1))].filter((id) => !keep.has(id));
      const back: string[] = [];
      await Promise.all(ids.map(async (id) => {
        const [action, name] = await c.twRequeue(k.task(id), k.events(id), k.channel(id), id, wid, mode, now, this.settings.ttlS, this.settings.maxLosses);
        if (action === "push") back.push(id);
        else if (action === "cancelled" || action === "exhausted") {
          this.tally.finished(id, action === "cancelled" ? "cancelled" : "failed", name, action === "exhausted");
        }
      }));
      const tx = c.multi();
      if (back.length > 0) tx.rpush(k.queue(shard), ...back);
      if (mode === "orphan") for (const id of ids) tx.lrem(active, 0, id);
      else tx.del(active);
      if (mode !== "orphan" && shard === 0) tx.zrem(k.workers, wid).del(k.worker(wid));
      if (tx.length > 0) {
        const res = await tx.exec();
        const err = res?.find(([e]) => e)?.[0];
        if (!res || err) throw err ?? new Error("hand-back transaction aborted");
      }
      pushed += back.length;
    }
    return pushed;
  }

  private async promote(): Promise<void> {
    const k = this.keys;
    for (let shard = 0; shard < k.shards; shard++) {
      try {
        await this.clients.command.twPromote(k.delayed(shard), k.queue(shard), Date.now(), 1000);
      } catch {
        // next tick tries again
      }
    }
  }

  /**
   * Stops taking tasks, lets running ones finish within graceMs, hands the rest back to the queue and
   * leaves the registry. Idempotent: a second call returns the same promise.
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= this.doClose(graceMs);
    return this.closing;
  }

  private async doClose(graceMs: number): Promise<void> {
    this.stopping = true;
    this.slots.close();
    this.slotFree?.();
    for (const b of this.clients.blocking) b.disconnect(); // interrupts a pending BLMOVE; what it moved is handed back below
    await this.loopDone.catch(() => {});
    const deadline = Date.now() + graceMs;
    // Heartbeats go on meanwhile, or a grace period longer than WORKER_DEAD_MS would get our tasks reaped.
    while (this.running.size > 0 && Date.now() < deadline) {
      await Promise.race([Bun.sleep(Math.min(50, deadline - Date.now())), new Promise<void>((r) => (this.slotFree = r))]);
    }
    for (const t of this.timers) clearInterval(t);
    await this.ticking; // a heartbeat landing after the hand-back would sign us up again
    const left = [...this.running.values()];
    for (const r of left) r.stop(new Stop("shutdown", "worker shutting down"));
    try {
      const n = await this.write("hand-back of unfinished tasks", () => this.requeue(this.id, "shutdown", undefined, new Set(this.done.flat())), HANDBACK_RETRY_MS);
      if (n > 0) this.log.info(`handed ${n} unfinished tasks back to the queue`);
    } catch (err) {
      this.log.error("could not hand tasks back; the reaper will once our heartbeat expires", String(err));
    }
    await this.tally.flush();
    await this.clients.subscriber.unsubscribe(this.keys.control).catch(() => {});
  }
}

/** Parsed options by their JSON: most tasks of a kind carry the same few, so each is parsed once. */
const optionsCache = new Map<string, TaskOptions>();

function parseOptions(json: string): TaskOptions {
  let opts = optionsCache.get(json);
  if (opts) return opts;
  try {
    opts = { ...defaultTaskOptions, ...(JSON.parse(json) as Partial<TaskOptions>) };
  } catch {
    opts = defaultTaskOptions;
  }
  if (optionsCache.size >= 1_000) optionsCache.clear(); // bounded: distinct per-submit overrides must not grow it
  optionsCache.set(json, opts);
  return opts;
}

function toJson(v: unknown): string {
  return JSON.stringify(v) ?? "null";
}

function errorJson(code: string, message: string): string {
  return JSON.stringify({ code, message });
}
