/**
 * Redis commands issued in the same turn of the event loop leave together: on one Redis as one pipeline
 * (one write, one round trip, in the order issued), so a busy process pays a syscall per batch, not per
 * command. On a cluster each command is sent at once (ioredis routes it to its slot's node).
 */
import { type Step, inOrder, isCluster, together } from "./redis.ts";
import type { Arg, RunScript, ScriptedRedis, Scripts } from "./scripts.ts";

/**
 * A batch this long leaves at once: a burst (thousands of progress events in one turn) streams out in
 * pipelines Redis works on while the burst goes on, instead of one pipeline built first and sent after.
 */
const MAX_BATCH = 256;

interface Pending {
  step: Step;
  /** How to send it instead when it is alone in its turn. */
  alone?: () => Promise<unknown>;
  resolve(v: unknown): void;
  reject(err: unknown): void;
}

export class Batch {
  private pending: Pending[] = [];
  private readonly cluster: boolean;

  constructor(private readonly redis: ScriptedRedis) {
    this.cluster = isCluster(redis);
  }

  /**
   * One command, sent with the others of this turn. `alone`: how to send it instead when no other command
   * shares its turn (one Redis): a server's lone submit goes through Bun's client, a burst as one pipeline.
   */
  one<T>(step: (r: ScriptedRedis) => Promise<T>, alone?: () => Promise<T>): Promise<T> {
    if (this.cluster) return step(this.redis);
    return new Promise<T>((resolve, reject) => this.add({ step, alone, resolve: resolve as (v: unknown) => void, reject }));
  }

  /** One script by name (RunScript), sent with the others of this turn. */
  readonly script: RunScript = ((name: keyof Scripts, keys: readonly Arg[], args: readonly Arg[]) =>
    this.one((r) => (r[name] as (...a: Arg[]) => Promise<unknown>)(...keys, ...args))) as RunScript;

  /** Commands that must take effect in this order (see inOrder): adjacent in this turn's pipeline. */
  inOrder(steps: Step[]): Promise<unknown[]> {
    return this.cluster ? inOrder(this.redis, steps) : this.all(steps);
  }

  /** Commands whose order does not matter (see together). */
  together(steps: Step[]): Promise<unknown[]> {
    return this.cluster ? together(this.redis, steps) : this.all(steps);
  }

  private all(steps: Step[]): Promise<unknown[]> {
    return Promise.all(steps.map((s) => this.one(async (r) => s(r))));
  }

  private add(p: Pending): void {
    const n = this.pending.push(p);
    // setImmediate, not a microtask: handlers ending in one timers phase still share a batch.
    if (n === 1) setImmediate(() => this.flush());
    else if (n >= MAX_BATCH) this.flush();
  }

  private flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return; // already sent when it grew to MAX_BATCH
    this.pending = [];
    if (batch.length === 1) {
      const b = batch[0]!; // a pipeline of one costs more than the command
      try {
        Promise.resolve(b.alone ? b.alone() : b.step(this.redis)).then(b.resolve, b.reject);
      } catch (err) {
        b.reject(err);
      }
      return;
    }
    const p = this.redis.pipeline();
    for (const b of batch) b.step(p as unknown as ScriptedRedis); // a pipeline has every command and script the client has
    p.exec()
      .then((res) => {
        if (!res) throw new Error("pipeline aborted");
        res.forEach(([err, v], i) => (err ? batch[i]!.reject(err) : batch[i]!.resolve(v)));
      })
      .catch((err) => {
        for (const b of batch) b.reject(err); // one already settled ignores this
      });
  }
}
