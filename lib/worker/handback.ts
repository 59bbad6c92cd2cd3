/**
 * Hands a worker's processing lists back to the queue shards: a dead worker's (lost), our own on the
 * way out (shutdown), or ids in our own list that no handler here runs (orphan).
 */
import { handoffArgs, parseHandoff } from "../handoff.ts";
import type { Keys } from "../keys.ts";
import { inOrder, isCluster } from "../redis.ts";
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
   * On one Redis the worker first leaves the shard's parked set, so nothing more is handed to it; a task
   * still in its hand-off list was never seen by it and goes back as it was (`unseen`), or, for an orphan
   * audit of our own list, stays for our next take to collect. What goes back is dispatched: a parked
   * worker gets it at once.
   * Returns how many went back on a queue; -1 (lost) when the worker's heartbeat key is alive again.
   */
  async requeue(wid: string, mode: HandBackMode, shards?: number[], keep = new Set<string>()): Promise<number> {
    const k = this.keys;
    const c = this.command;
    if (mode === "lost" && (await c.exists(k.worker(wid))) === 1) return -1;
    const order = shards ?? Array.from({ length: k.shards }, (_, i) => k.shards - 1 - i);
    const now = Date.now();
    let pushed = 0;
    const single = !isCluster(c);
    for (const shard of order) {
      const active = k.active(wid, shard);
      const handoff = k.handoff(wid, shard);
      const unseen = new Set<string>();
      if (single) {
        const [, handed] = (await inOrder(c, [(r) => r.zrem(k.parked(shard), wid), (r) => r.lrange(handoff, 0, -1)])) as [number, string[]];
        for (const e of handed) if (e !== "") unseen.add(parseHandoff(e)[0]); // "": unpark.lua's wake-up
      }
      const ids = [...new Set(await c.lrange(active, 0, -1))].filter((id) => !keep.has(id) && !(mode === "orphan" && unseen.has(id)));
      const back: string[] = [];
      await Promise.all(ids.map(async (id) => {
        const how = unseen.has(id) ? "unseen" : mode;
        const [action, name] = await c.twRequeue(k.task(id), k.events(id), k.channel(id), id, wid, how, now, this.settings.ttlS, this.settings.maxLosses);
        if (action === "push") back.push(id);
        else if (action === "cancelled" || action === "exhausted") {
          this.tally.finished(id, action === "cancelled" ? "cancelled" : "failed", name, action === "exhausted");
        }
      }));
      const tx = c.multi();
      if (mode === "orphan") for (const id of ids) tx.lrem(active, 0, id);
      else tx.del(active, handoff);
      // After the processing list changed: a worker this dispatches to may be the one handing back.
      if (single) for (const id of back) (tx as unknown as ScriptedRedis).twDispatch(k.queue(shard), id, "RPUSH", now, this.settings.ttlS, ...handoffArgs(k, shard, true));
      else if (back.length > 0) tx.rpush(k.queue(shard), ...back);
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
