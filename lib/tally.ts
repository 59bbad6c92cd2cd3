/**
 * The fleet's bookkeeping (the stats counters, the recent and dead-letter lists), written after each
 * task's own script as best effort: a crash in between loses a count, never a task. Updates are summed
 * over FLUSH_EVERY_MS (one HINCRBY per counter, one LPUSH per list), so they cost a few commands per
 * window, not per task: at 1,000 tasks/s, four commands per task were a fifth of the CPU.
 */
import type { Keys } from "./keys.ts";
import type { Logger } from "./log.ts";
import { type Step, together } from "./redis.ts";
import type { ScriptedRedis } from "./scripts.ts";

const RECENT_MAX = 200;
const DEAD_MAX = 10_000;
/** The dashboard and /metrics are this much behind at worst. */
const FLUSH_EVERY_MS = 100;

export class Tally {
  private counts = new Map<string, number>();
  private recent: string[] = [];
  private dead: string[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly keys: Keys,
    private readonly log: Logger,
  ) {}

  /** A task ended (counted once, by whoever wrote its final state). */
  finished(id: string, state: "succeeded" | "failed" | "cancelled", task: string, exhausted = false): void {
    this.recent.push(id);
    this.count(`${state}:${task}`);
    if (exhausted) {
      // Rare, and someone may be looking for it in the dead-letter list right now: no waiting.
      this.dead.push(id);
      void this.flush();
    }
  }

  count(field: string): void {
    this.counts.set(field, (this.counts.get(field) ?? 0) + 1);
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_EVERY_MS);
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
