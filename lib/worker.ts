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
import type { ScriptedRedis } from "./scripts.ts";

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
      if (msg.startsWith("cancel ")) this.running.get(msg.slice(7))?.stop(new Stop("cancelled", "cancelled"));
    });
    await subscriber.subscribe(this.keys.control);
    await this.heartbeat();
    this.timers.push(setInterval(() => void this.heartbeat().then(() => this.reap()), this.settings.heartbeatMs));
    // Safety net for retries whose own timer died with the worker that scheduled them.
    this.timers.push(setInterval(() => void this.promote(), 1_000));
    this.loopDone = this.loop();
  }

  private async loop(): Promise<void> {
    const { command, blocking } = this.clients;
    const k = this.keys;
    let failures = 0;
    while (!this.stopping) {
      const free = this.settings.concurrency - this.running.size;
      if (free <= 0) {
        await new Promise<void>((r) => (this.slotFree = r));
        continue;
      }
      try {
        let batch = await command.twClaim(k.queue, this.activeKey, k.prefix, free, "", Date.now(), this.id);
        if (batch.length === 0) {
          const moved = (await blocking.blmove(k.queue, this.activeKey, "RIGHT", "LEFT", 2)) as string | null;
          if (!moved) continue;
          batch = await command.twClaim(k.queue, this.activeKey, k.prefix, free, moved, Date.now(), this.id);
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
      .catch((err) => this.log.warn(`progress of ${r.id} not stored`, String(err)));
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
      await this.clients.command.twRetry(
        k.task(r.id), k.events(r.id), this.activeKey, k.delayed,
        r.id, r.attempt, errorJson(code, message), Date.now() + delay, delay, k.channel(r.id),
      );
      setTimeout(() => void this.promote(), delay + 5);
      return;
    }
    if (opts.retries > 0) {
      return this.finish(r, "failed", errorJson("exhausted", `${message} (gave up after ${r.attempt} attempts)`), true);
    }
    await this.finish(r, "failed", errorJson(code, message));
  }

  private async finish(r: Running, state: "succeeded" | "failed" | "cancelled", payload: string, exhausted = false): Promise<void> {
    const k = this.keys;
    await this.clients.command.twFinish(
      k.task(r.id), this.activeKey, k.stats, k.recent, k.dead,
      k.prefix, r.id, state, payload, Date.now(), this.settings.ttlS, exhausted ? "1" : "0",
    );
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
    } catch (err) {
      this.log.debug("heartbeat failed", String(err));
    }
  }

  /** Hands back the tasks of workers whose heartbeat is older than deadMs. */
  private async reap(): Promise<void> {
    const k = this.keys;
    try {
      const dead = await this.clients.command.zrangebyscore(k.workers, "-inf", Date.now() - this.settings.deadMs);
      for (const wid of dead) {
        if (wid === this.id) continue;
        const n = await this.requeue(wid, true);
        this.log.warn(`worker ${wid} is gone; ${n} of its tasks went back to the queue`);
      }
    } catch (err) {
      this.log.debug("reap failed", String(err));
    }
  }

  private requeue(wid: string, countLoss: boolean): Promise<number> {
    const k = this.keys;
    return this.clients.command.twRequeue(
      k.active(wid), k.queue, k.workers, k.stats, k.recent, k.dead, k.worker(wid),
      k.prefix, wid, Date.now(), this.settings.ttlS, this.settings.maxLosses, countLoss ? "lost" : "shutdown",
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
    for (const t of this.timers) clearInterval(t);
    this.clients.blocking.disconnect(); // interrupts a pending BLMOVE; what it moved is handed back below
    await this.loopDone.catch(() => {});
    const deadline = Date.now() + graceMs;
    while (this.running.size > 0 && Date.now() < deadline) {
      await Promise.race([Bun.sleep(Math.min(50, deadline - Date.now())), new Promise<void>((r) => (this.slotFree = r))]);
    }
    const left = [...this.running.values()];
    for (const r of left) r.stop(new Stop("shutdown", "worker shutting down"));
    try {
      const n = await this.requeue(this.id, false);
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
