/**
 * The fleet's bookkeeping (the stats counters, the recent and dead-letter lists), written after each
 * task's own script as best effort: a crash in between loses a count, never a task. Updates are summed
 * (one HINCRBY per counter, one LPUSH per list) and ride along with the process's next batch of task
 * commands (no round trip of their own), or go alone after at most RIDE_MAX_MS when none comes.
 */
import type { Batch } from "./batch.ts";
import type { Keys } from "./keys.ts";
import type { Logger } from "./log.ts";
import { type Step, together } from "./redis.ts";
import type { ScriptedRedis } from "./scripts.ts";

const RECENT_MAX = 200;
const DEAD_MAX = 10_000;
/** Longest a count waits for a batch to ride with: the dashboard and /metrics are this much behind at worst. */
const RIDE_MAX_MS = 100;

export class Tally {
  private counts = new Map<string, number>();
  private recent: string[] = [];
  private dead: string[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** A ride is booked with the batch (one at most, so a process whose batch is idle books no more). */
  private riding = false;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly keys: Keys,
    private readonly log: Logger,
    private readonly batch: Batch,
  ) {}

  /** A task ended (counted once, by whoever wrote its final state). */
  finished(id: string, state: "succeeded" | "failed" | "cancelled", task: string, exhausted = false): void {
    this.recent.push(id);
    this.count(`${state}:${task}`);
    if (exhausted) {
      // Rare, and someone may be looking for it in the dead-letter list right now: no waiting for a ride.
      this.dead.push(id);
      void this.flush();
    }
  }

  count(field: string): void {
    this.counts.set(field, (this.counts.get(field) ?? 0) + 1);
    if (this.timer === undefined) {
      this.timer = setTimeout(() => void this.flush(), RIDE_MAX_MS);
      if (!this.riding) {
        this.riding = true;
        this.batch.ride(() => {
          this.riding = false;
          return this.take();
        });
      }
    }
  }

  /** Writes what is counted now (a stopping process calls this last). */
  async flush(): Promise<void> {
    const steps = this.take();
    if (steps.length > 0) await together(this.redis, steps).catch((err) => this.log.debug("bookkeeping not written", String(err)));
  }

  /** The commands for what is counted so far, which is then no longer pending. */
  private take(): Step[] {
    clearTimeout(this.timer);
    this.timer = undefined;
    const k = this.keys;
    const [recent, dead] = [this.recent, this.dead];
    const steps: Step[] = [...this.counts].map(([field, n]) => (r) => r.hincrby(k.stats, field, n));
    // LPUSH a b c leaves c first: newest first, in the order tasks ended.
    if (recent.length > 0) steps.push((r) => r.lpush(k.recent, ...recent), (r) => r.ltrim(k.recent, 0, RECENT_MAX - 1));
    if (dead.length > 0) steps.push((r) => r.lpush(k.dead, ...dead), (r) => r.ltrim(k.dead, 0, DEAD_MAX - 1));
    this.counts = new Map();
    this.recent = [];
    this.dead = [];
    return steps;
  }
}
