/**
 * The round trip that starts taken ids and takes more from a queue shard (on one Redis one script does
 * both), and what its reply means.
 */
import type { Keys } from "../keys.ts";
import { isCluster, together } from "../redis.ts";
import type { RunScript, ScriptedRedis } from "../scripts.ts";

/** A task a worker started: id, task name, args JSON, options JSON, attempt. */
export type Started = [string, string, string, string, number];

export class Taker {
  constructor(
    private readonly command: ScriptedRedis,
    /** Where the start and take scripts go (the task scripts' connection: see Outcomes). */
    private readonly run: RunScript,
    private readonly keys: Keys,
    /** The worker's id: its processing lists are named after it, and its tasks name it as their owner. */
    private readonly id: string,
    private readonly settings: { readonly ttlS: number },
    /** The worker's, per shard: ids whose outcome is written; the next take drops them from the processing list. */
    private readonly done: string[][],
  ) {
    this.single = !isCluster(command);
  }

  /** One Redis: a take also starts what it takes (take_start.lua). */
  private readonly single: boolean;

  private activeKey(shard: number): string {
    return this.keys.active(this.id, shard);
  }

  /**
   * Starts taken ids (each in its own slot) and, with `take` given, in the same round trip takes up to
   * `take` more from the shard and drops from our processing list the ids whose outcome is written. On
   * one Redis what it takes is started too; on a cluster it comes back in `taken`, for the caller to start
   * next. Ids no longer queued leave the processing list. `moved`: how many it took. `ours`: how many this
   * worker had started already (see starting.lua); they stay in the processing list for the audit.
   */
  async begin(shard: number, ids: string[], take?: number): Promise<{ started: Started[]; taken: string[]; moved: number; ours: number }> {
    const { command, run } = this;
    const k = this.keys;
    const ttl = this.settings.ttlS;
    // Issued in one turn: they leave together (one write on one Redis), and their order does not matter.
    const calls: Promise<unknown>[] = ids.map((id) => run("twStart", [k.task(id), k.events(id)], [this.id, ttl]));
    const taking = take !== undefined && (take > 0 || this.done[shard]!.length > 0);
    const drop = taking ? this.done[shard]!.splice(0) : [];
    if (taking) {
      const [queue, active] = [k.queue(shard), this.activeKey(shard)];
      calls.push(this.single
        ? run("twTakeStart", [queue, active], [take ?? 0, this.id, ttl, k.task(""), k.events(""), ...drop])
        : run("twTake", [queue, active], [take ?? 0, ...drop]));
    }
    let res: unknown[];
    try {
      res = await Promise.all(calls);
    } catch (err) {
      this.done[shard]!.push(...drop); // maybe not dropped: the next take tries again (LREM of an absent id is a no-op)
      throw err;
    }
    let taken: string[] = [];
    const started: Started[] = [];
    let moved = 0;
    let ours = 0;
    if (taking && this.single) {
      const rows = res.pop() as (string | number)[];
      moved = Number(rows[0]);
      ours = Number(rows[1]);
      for (let i = 2; i + 4 < rows.length; i += 5) {
        started.push([String(rows[i]), String(rows[i + 1]), String(rows[i + 2]), String(rows[i + 3]), Number(rows[i + 4])]);
      }
    } else if (taking) {
      taken = res.pop() as string[];
      moved = taken.length;
    }
    const skipped: string[] = [];
    ids.forEach((id, i) => {
      const r = res[i] as [string, string, string, number, string] | null | "ours";
      if (r === "ours") ours++;
      else if (r) started.push([id, r[0], r[1], r[2], r[3]]);
      else skipped.push(id);
    });
    if (skipped.length > 0) await together(command, skipped.map((id) => (r) => r.lrem(this.activeKey(shard), -1, id)));
    return { started, taken, moved, ours };
  }
}
