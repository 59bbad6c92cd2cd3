/**
 * The fleet's bookkeeping (the stats counters, the recent and dead-letter lists), written after each
 * task's own script as best effort: a crash in between loses a count, never a task. Updates made in the
 * same turn of the event loop go out together (one HINCRBY per counter, one LPUSH per list), so a busy
 * worker pays a few commands per batch, not per task.
 */
import type { Keys } from "./keys.ts";
import type { Logger } from "./log.ts";
import { type Step, together } from "./redis.ts";
import type { ScriptedRedis } from "./scripts.ts";

const RECENT_MAX = 200;
const DEAD_MAX = 10_000;

export class Tally {
  private counts = new Map<string, number>();
  private recent: string[] = [];
  private dead: string[] = [];
  private scheduled = false;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly keys: Keys,
    private readonly log: Logger,
  ) {}

  /** A task ended (counted once, by whoever wrote its final state). */
  finished(id: string, state: "succeeded" | "failed" | "cancelled", task: string, exhausted = false): void {
    this.count(`${state}:${task}`);
    this.recent.push(id);
    if (exhausted) this.dead.push(id);
  }

  count(field: string): void {
    this.counts.set(field, (this.counts.get(field) ?? 0) + 1);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const k = this.keys;
    const [recent, dead] = [this.recent, this.dead];
    const steps: Step[] = [...this.counts].map(([field, n]) => (r) => r.hincrby(k.stats, field, n));
    // LPUSH a b c leaves c first: newest first, in the order tasks ended.
    if (recent.length > 0) steps.push((r) => r.lpush(k.recent, ...recent), (r) => r.ltrim(k.recent, 0, RECENT_MAX - 1));
    if (dead.length > 0) steps.push((r) => r.lpush(k.dead, ...dead), (r) => r.ltrim(k.dead, 0, DEAD_MAX - 1));
    this.counts = new Map();
    this.recent = [];
    this.dead = [];
    together(this.redis, steps).catch((err) => this.log.debug("bookkeeping not written", String(err)));
  }
}
