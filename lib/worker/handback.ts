/**
 * Hands a worker's processing lists back to the queue shards: a dead worker's (lost), our own on the
 * way out (shutdown), or ids in our own list that no handler here runs (orphan).
 */
import type { Keys } from "../keys.ts";
import type { ScriptedRedis } from "../scripts.ts";
import type { Tally } from "../tally.ts";

export type HandBackMode = "lost" | "shutdown" | "orphan";

export class HandBack {
  constructor(
    private readonly command: ScriptedRedis,
    private readonly keys: Keys,
    private readonly settings: { readonly ttlS: number; readonly maxLosses: number },
    private readonly tally: Tally,
  ) {}

  /**
   * Hands the tasks in worker `wid`'s processing lists back to their queue shards. Per shard: each task's
   * script decides (a `queued` event, or a final state), then one MULTI in the shard's slot puts the ids
   * back on the queue and takes them out of the processing list (lost, shutdown: drops the list). Shard 0
   * goes last: its slot also holds the registry, whose entry leaves in the same MULTI. A crash anywhere
   * leaves the rest for the next run, which finds each task already handled.
   * Returns how many went back on a queue; -1 (lost) when the worker's heartbeat key is alive again.
   */
  async requeue(wid: string, mode: HandBackMode, shards?: number[], keep = new Set<string>()): Promise<number> {
    const k = this.keys;
    const c = this.command;
    if (mode === "lost" && (await c.exists(k.worker(wid))) === 1) return -1;
    const order = shards ?? Array.from({ length: k.shards }, (_, i) => k.shards - 1 - i);
    let pushed = 0;
    for (const shard of order) {
      const active = k.active(wid, shard);
      const ids = [...new Set(await c.lrange(active, 0, -1))].filter((id) => !keep.has(id));
      const back: string[] = [];
      await Promise.all(ids.map(async (id) => {
        const [action, name] = await c.twRequeue(k.task(id), k.events(id), k.channel(id), id, wid, mode, this.settings.ttlS, this.settings.maxLosses);
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
}
