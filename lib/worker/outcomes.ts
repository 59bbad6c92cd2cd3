/**
 * Writes what a handler reports: its progress (best effort) while it runs, then its outcome (succeeded,
 * a retry, failed, cancelled) with one task script, kept trying through a Redis outage.
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
  ) {}

  progress(r: Running, data: unknown): void {
    if (r.stopped) return;
    const k = this.keys;
    const json = toJson(data);
    const n = ++r.progressSent;
    this.run("twProgress", [k.task(r.id), k.events(r.id), k.channel(r.id)], [r.id, r.attempt, json, this.settings.eventsMax, n])
      .then((seq) => {
        if (seq === -1) r.stop(new Stop("cancelled", "cancelled"));
      })
      // Progress is best-effort: while Redis is down it is dropped (the connection error is logged once).
      .catch((err) => (isRedisDown(err) ? this.log.debug : this.log.warn)(`progress of ${r.id} not stored`, String(err)));
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
    const seq = await this.write(`outcome of ${r.id}`, () =>
      this.run("twFinish", [k.task(r.id), k.events(r.id), k.channel(r.id)], [r.id, state, payload, this.settings.ttlS]));
    this.done[r.shard]!.push(r.id);
    if (seq > 0) this.tally.finished(r.id, state, r.task, exhausted);
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
