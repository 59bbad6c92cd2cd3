/**
 * The worker loop: claim task ids from the queue (BLMOVE into this worker's processing list, then a
 * batch claim script), run up to `concurrency` handlers at once, and write each outcome with one script.
 * A heartbeat keeps this worker alive in the registry; any live worker reaps dead ones' tasks.
 */
import { hostname } from "node:os";
import type Redis from "ioredis";
import { type TaskOptions, defaultTaskOptions } from "../tasks/define.ts";
import { getTask } from "../tasks/index.ts";
import { isRedisDown } from "./errors.ts";
import type { Keys } from "./keys.ts";
import type { Logger } from "./log.ts";
import { RECONNECT_MAX_MS } from "./redis.ts";
import type { ScriptedRedis } from "./scripts.ts";

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
  blocking: Redis;
  subscriber: Redis;
}

/** Why a running handler's signal was aborted. */
class Stop extends Error {
  constructor(readonly reason: "cancelled" | "timeout" | "shutdown", message: string) {
    super(message);
    this.name = reason === "timeout" ? "TimeoutError" : "AbortError";
  }
}

interface Running {
  id: string;
  task: string;
  attempt: number;
  started: number;
  abort: AbortController;
  stop(s: Stop): void;
}

export class Worker {
  readonly id = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  private readonly running = new Map<string, Running>();
  private stopping = false;
  private slotFree: (() => void) | undefined;
  private timers: ReturnType<typeof setInterval>[] = [];
  private loopDone: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  /** Since when heartbeats have succeeded without a break (undefined while Redis is unreachable). */
  private upSince: number | undefined;
  private lastBeat: number | undefined;
  private ticking: Promise<void> | undefined;
  private ticks = 0;
  /** Set after a reconnect (and now and then): the loop checks our processing list for orphans. */
  private auditDue = false;
  /** Cancels heard for ids not running here (yet): a claim whose reply is still on its way must see them. */
  private readonly earlyCancels = new Map<string, number>();
  readonly startedAt = Date.now();

  constructor(
    private readonly clients: WorkerClients,
    private readonly keys: Keys,
    private readonly settings: WorkerSettings,
    private readonly log: Logger,
  ) {}

  get activeKey(): string {
    return this.keys.active(this.id);
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
    for (const c of [this.clients.command, this.clients.blocking]) c.on("ready", () => (this.auditDue = true));
    await this.heartbeat();
    this.timers.push(setInterval(() => void this.tick(), this.settings.heartbeatMs));
    // Safety net for retries whose own timer died with the worker that scheduled them.
    this.timers.push(setInterval(() => void this.promote(), 1_000));
    this.loopDone = this.loop();
  }

  private async loop(): Promise<void> {
    const { command, blocking } = this.clients;
    const k = this.keys;
    let failures = 0;
    const ttl = this.settings.ttlS;
    while (!this.stopping) {
      const free = this.settings.concurrency - this.running.size;
      if (free <= 0) {
        await new Promise<void>((r) => (this.slotFree = r));
        continue;
      }
      try {
        // Only here, between claims, is every id in our processing list one we run or one we lost track of.
        if (this.auditDue) await this.audit();
        let batch = await command.twClaim(k.queue, this.activeKey, k.prefix, free, "", Date.now(), this.id, ttl);
        if (batch.length === 0) {
          const moved = (await blocking.blmove(k.queue, this.activeKey, "RIGHT", "LEFT", 2)) as string | null;
          if (!moved || this.stopping) continue; // a move that raced close() is handed back by it
          batch = await command.twClaim(k.queue, this.activeKey, k.prefix, free, moved, Date.now(), this.id, ttl);
        }
        failures = 0;
        for (const [id, task, args, opts, attempt] of batch) this.run(id, task, args, opts, Number(attempt));
      } catch (err) {
        if (this.stopping) break;
        // Redis is down or restarting: back off exponentially (capped), then try again.
        failures++;
        if (failures === 1 || !isRedisDown(err)) this.log.warn("claim failed; retrying", String(err));
        await Bun.sleep(Math.min(50 * 2 ** failures, 2_000));
      }
    }
  }

  private run(id: string, name: string, argsJson: string, optsJson: string, attempt: number): void {
    const abort = new AbortController();
    let stopped: ((s: Stop) => void) | undefined;
    const stoppedP = new Promise<never>((_, reject) => (stopped = reject));
    const r: Running = {
      id, task: name, attempt, started: Date.now(), abort,
      stop: (s) => {
        if (abort.signal.aborted) return;
        abort.abort(s);
        stopped!(s);
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
        id, attempt, signal: abort.signal,
        progress: (data) => this.progress(r, data),
      });
    })();
    Promise.race([done, stoppedP])
      .then(
        (result) => this.succeed(r, result),
        (err) => this.fail(r, err, opts),
      )
      .catch((err) => this.log.error(`could not record the outcome of ${id}`, err))
      .finally(() => {
        clearTimeout(timer);
        this.running.delete(id);
        this.slotFree?.();
        this.slotFree = undefined;
      });
    done.catch(() => {}); // after a stop the handler's own rejection is expected and unobserved
  }

  private progress(r: Running, data: unknown): void {
    if (r.abort.signal.aborted) return;
    const k = this.keys;
    this.clients.command
      .twProgress(k.task(r.id), k.events(r.id), r.id, r.attempt, toJson(data), k.channel(r.id), this.settings.eventsMax)
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
      await this.write(`retry of ${r.id}`, () => this.clients.command.twRetry(
        k.task(r.id), k.events(r.id), this.activeKey, k.delayed,
        r.id, r.attempt, errorJson(code, message), due, delay, k.channel(r.id),
      ));
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
    await this.write(`outcome of ${r.id}`, () => this.clients.command.twFinish(
      k.task(r.id), this.activeKey, k.stats, k.recent, k.dead,
      k.prefix, r.id, state, payload, now, this.settings.ttlS, exhausted ? "1" : "0",
    ));
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
      if (++this.ticks % AUDIT_EVERY === 0) this.auditDue = true;
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

  /** Hands back ids in our processing list that no handler here runs. Called by the loop only. */
  private async audit(): Promise<void> {
    this.auditDue = false;
    let n: number;
    try {
      n = await this.requeue(this.id, "orphan", [...this.running.keys()]);
    } catch (err) {
      this.auditDue = true; // Redis still down: try again on the next turn
      throw err;
    }
    if (n > 0) this.log.warn(`${n} tasks taken but not run here (a reply lost to a Redis outage) went back to the queue`);
  }

  private requeue(wid: string, mode: "lost" | "shutdown" | "orphan", keep: string[] = []): Promise<number> {
    const k = this.keys;
    return this.clients.command.twRequeue(
      k.active(wid), k.queue, k.workers, k.stats, k.recent, k.dead, k.worker(wid),
      k.prefix, wid, Date.now(), this.settings.ttlS, this.settings.maxLosses, mode, ...keep,
    );
  }

  private async promote(): Promise<void> {
    try {
      await this.clients.command.twPromote(this.keys.delayed, this.keys.queue, Date.now(), 1000);
    } catch {
      // next tick tries again
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
    this.slotFree?.();
    this.clients.blocking.disconnect(); // interrupts a pending BLMOVE; what it moved is handed back below
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
      const n = await this.write("hand-back of unfinished tasks", () => this.requeue(this.id, "shutdown"), HANDBACK_RETRY_MS);
      if (n > 0) this.log.info(`handed ${n} unfinished tasks back to the queue`);
    } catch (err) {
      this.log.error("could not hand tasks back; the reaper will once our heartbeat expires", String(err));
    }
    await this.clients.subscriber.unsubscribe(this.keys.control).catch(() => {});
  }
}

function parseOptions(json: string): TaskOptions {
  try {
    return { ...defaultTaskOptions, ...(JSON.parse(json) as Partial<TaskOptions>) };
  } catch {
    return defaultTaskOptions;
  }
}

function toJson(v: unknown): string {
  return JSON.stringify(v) ?? "null";
}

function errorJson(code: string, message: string): string {
  return JSON.stringify({ code, message });
}
