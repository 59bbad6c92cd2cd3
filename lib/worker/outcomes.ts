/**
 * Writes what a handler reports: its progress while it runs, then its outcome (succeeded, a retry, failed,
 * cancelled) with one task script; both kept, in order, through a Redis outage.
 */
import type { TaskOptions } from "../../tasks/define.ts";
import { isRedisDown } from "../errors.ts";
import type { Keys } from "../keys.ts";
import type { Logger } from "../log.ts";
import { RECONNECT_MAX_MS } from "../redis.ts";
import type { RunScript } from "../scripts.ts";
import type { Tally } from "../tally.ts";
import { type Running, Stop } from "./run-state.ts";

/** How long an outcome write keeps retrying through a Redis outage before the task is left to run again. */
const WRITE_RETRY_MS = 60_000;
/** How long held progress waits before its first write: the rest of the failed batch fails meanwhile. */
const HELD_SETTLE_MS = 20;

export class Outcomes {
  constructor(
    /** Where the task scripts go: one connection, so a task's progress and outcome take effect in the order written. */
    private readonly run: RunScript,
    private readonly keys: Keys,
    private readonly settings: { readonly ttlS: number; readonly eventsMax: number },
    private readonly tally: Tally,
    private readonly log: Logger,
    /** The worker's, per shard: ids whose outcome is written; its next take drops them from the processing list. */
    private readonly done: string[][],
    /** Moves due retries from the delayed sets to their queues. */
    private readonly promote: () => Promise<void>,
    /** One Redis (not a cluster): outcomes written in one turn go as one script call (finish_many.lua). */
    private readonly single = false,
  ) {}

  /** Outcomes waiting for the end of this turn: id, state, payload, and who waits for the seq. */
  private pending: { id: string; state: string; payload: string; resolve: (seq: number) => void; reject: (err: unknown) => void }[] = [];

  progress(r: Running, data: unknown): void {
    if (r.stopped) return;
    const json = toJson(data);
    const n = ++r.progressSent;
    if (r.held) return this.hold(r, n, json);
    if (r.progressInFlight) (r.progressNext ??= []).push([n, json]);
    else this.sendBatch(r, [[n, json]]);
  }

  /**
   * Sends reports together (one write), and the ones made meanwhile only once all are answered: a client that
   * holds a command through a failover (ioredis on a cluster) must not let a later report overtake it.
   */
  private sendBatch(r: Running, batch: [number, string][]): void {
    r.progressInFlight = Promise.all(batch.map(([n, json]) =>
      this.sendProgress(r, n, json).catch((err) => {
        if (isRedisDown(err)) return this.hold(r, n, json);
        this.log.warn(`progress of ${r.id} not stored`, String(err));
      }))).then(() => {
      r.progressInFlight = undefined;
      const next = r.progressNext;
      r.progressNext = undefined;
      if (!next) return;
      if (r.held) for (const [n, json] of next) this.hold(r, n, json);
      else this.sendBatch(r, next);
    });
  }

  /** Settles once every report of this attempt so far is stored or given up: the outcome comes after them. */
  private async progressSettled(r: Running): Promise<void> {
    while (r.progressInFlight || r.held) await (r.progressInFlight ?? r.heldWritten);
  }

  private async sendProgress(r: Running, n: number, json: string): Promise<void> {
    const k = this.keys;
    const seq = await this.run("twProgress", [k.task(r.id), k.events(r.id), k.channel(r.id)], [r.id, r.attempt, json, this.settings.eventsMax, n]);
    if (seq === -1) r.stop(new Stop("cancelled", "cancelled"));
  }

  /**
   * Keeps a report Redis could not take, and every later one, until Redis is back; then writes them in
   * report order (the script stores each number once, and none below one stored), before the outcome.
   */
  private hold(r: Running, n: number, json: string): void {
    if (!r.held) {
      r.held = [];
      r.heldWritten = this.writeHeld(r);
    }
    // Past EVENTS_MAX the log takes no more progress anyway (progress.lua).
    if (r.held.length >= this.settings.eventsMax) return;
    // A batch's reports fail one by one: keep the held in number order whatever order they arrive in.
    let i = r.held.length;
    while (i > 0 && r.held[i - 1]![0] > n) i--;
    r.held.splice(i, 0, [n, json]);
  }

  private async writeHeld(r: Running): Promise<void> {
    // The rest of a batch that failed fails with it: let those join the held ones first.
    await Bun.sleep(HELD_SETTLE_MS);
    const held = r.held!;
    while (held.length > 0) {
      const [n, json] = held[0]!;
      try {
        await this.write(`progress of ${r.id}`, () => this.sendProgress(r, n, json));
        held.shift();
      } catch (err) {
        // Redis stayed away past WRITE_RETRY_MS (or refused the script): the outcome's write, next, faces the same.
        this.log.warn(`${held.length} progress reports of ${r.id} not stored`, String(err));
        held.length = 0;
      }
    }
    r.held = undefined;
  }

  async succeed(r: Running, result: unknown): Promise<void> {
    let json: string;
    try {
      json = toJson(result);
    } catch (err) {
      return this.finish(r, "failed", errorJson("task_error", `result is not JSON-serializable: ${(err as Error).message}`));
    }
    await this.finish(r, "succeeded", json);
  }

  async fail(r: Running, err: unknown, opts: TaskOptions): Promise<void> {
    if (err instanceof Stop && err.reason === "shutdown") return; // handed back to the queue by close()
    if (err instanceof Stop && err.reason === "cancelled") return this.finish(r, "cancelled", "");
    const code = err instanceof Stop && err.reason === "timeout" ? "timeout" : "task_error";
    const message = err instanceof Error ? err.message : String(err);
    if (r.attempt <= opts.retries) {
      const base = Math.min(opts.backoff_ms * 2 ** (r.attempt - 1), opts.backoff_max_ms);
      const delay = Math.round(base * (0.5 + Math.random() * 0.5));
      const k = this.keys;
      // Task first, then the delayed set, then (with the next take) out of our list: a crash between
      // steps leaves the id for the reaper (or a duplicate entry, which start.lua skips), never lost.
      // (On a cluster the two keys may live on two nodes: the second waits for the first's reply.)
      await this.write(`retry of ${r.id}`, async () => {
        if (r.progressInFlight || r.held) await this.progressSettled(r);
        await this.run("twRetry", [k.task(r.id), k.events(r.id), k.channel(r.id)], [r.id, r.attempt, errorJson(code, message), delay]);
        await this.run("twDelay", [k.delayed(r.shard)], [r.id, delay]);
      });
      this.done[r.shard]!.push(r.id);
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
    // The final state first; the id leaves our processing list with the shard's next take (a crash before
    // leaves it to the reaper, which finds it final and drops it); then the fleet's counters.
    // After the attempt's progress (each try: a report can be held after the first try failed).
    const seq = await this.write(`outcome of ${r.id}`, async () => {
      if (r.progressInFlight || r.held) await this.progressSettled(r);
      return this.single ? this.finishLater(r.id, state, payload) : this.run("twFinish", [k.task(r.id), k.events(r.id), k.channel(r.id)], [r.id, state, payload, this.settings.ttlS]);
    });
    this.done[r.shard]!.push(r.id);
    if (seq > 0) this.tally.finished(r.id, state, r.task, exhausted);
  }

  private finishLater(id: string, state: string, payload: string): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ id, state, payload, resolve, reject }) === 1) queueMicrotask(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    const k = this.keys;
    if (batch.length === 1) {
      const { id, state, payload, resolve, reject } = batch[0]!;
      this.run("twFinish", [k.task(id), k.events(id), k.channel(id)], [id, state, payload, this.settings.ttlS]).then(resolve, reject);
      return;
    }
    const args: string[] = [String(this.settings.ttlS), k.task(""), k.events(""), k.channel("")];
    for (const o of batch) args.push(o.id, o.state, o.payload);
    this.run("twFinishMany", [], args).then(
      (seqs) => batch.forEach((o, i) => o.resolve(Number(seqs[i]))),
      (err) => batch.forEach((o) => o.reject(err)),
    );
  }

  /**
   * Runs an outcome write, retrying while Redis is unreachable: the task stays ours (and off the
   * orphan audit) until it is written. The scripts are compare-and-set, so a repeat is harmless.
   */
  async write<T>(what: string, op: () => Promise<T>, limitMs = WRITE_RETRY_MS): Promise<T> {
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
}

function toJson(v: unknown): string {
  return JSON.stringify(v) ?? "null";
}

function errorJson(code: string, message: string): string {
  return JSON.stringify({ code, message });
}
