/**
 * Every Redis key and channel taskwire uses, all under one prefix. Keys that one script touches share a
 * hash tag, so each script stays on one cluster slot: a task's keys carry `{<id>}`; queue shard i's keys
 * carry `{q}` (shard 0, the pre-sharding name, so an upgrade drains the old queue) or `{q<i>}`.
 *
 *   <p>:task:{id}            hash   state, task, args, attempts, seq, error, timestamps         TTL result TTL
 *                                   opts: only those that differ from the defaults (tasks/define.ts);
 *                                   inbox: the submitting server's inbox channel, if it has one. Counts
 *                                   of 0 and empty names are left out; a result is kept once, in the
 *                                   final event of the log below
 *   <p>:events:{id}          list   the task's event frames; frame n (seq n) is at index n-1    TTL result TTL
 *   <p>:ch:{id}              shard channel (SPUBLISH) "<seq> <kind> <frame>" per appended event
 *   <p>:inbox:<sid>          channel (PUBLISH) server <sid>'s inbox: "<id> <seq> <kind> <frame>" per event
 *                                   of each task submitted through it (one Redis only; the task hash names it)
 *   <p>:idem:<key>           string task id for an idempotency key (own slot, SET NX)         TTL result TTL
 *   <p>:{q<i>}:queue         list   shard i: task ids waiting (LPUSH in, taken from the right)
 *   <p>:{q<i>}:active:<wid>  list   shard i: ids a worker has taken from it (processing list)
 *   <p>:{q<i>}:delayed       zset   shard i: ids waiting for a retry, scored by due time (ms, Redis's clock)
 *   <p>:{q}:workers          zset   worker ids scored by last heartbeat (ms, Redis's clock)
 *   <p>:{q}:worker:<wid>     string JSON: host, pid, concurrency, running ids (same slot as
 *                                   workers, so a heartbeat is one script)                      TTL dead-after
 *   <p>:{q}:shards           string the fleet's QUEUE_SHARDS, set by the first process to start (no TTL:
 *                                   fleet-wide; lib/shard-count.ts)
 *   <p>:dead                 list   ids of tasks that ended `exhausted` (newest first, capped)
 *   <p>:stats                hash   counters "<outcome>:<task>" for /metrics across the fleet
 *   <p>:recent               list   ids of recently finished tasks for the dashboard (capped)
 *   <p>:control              channel (PUBLISH, reaches every node) "cancel <id>" to workers
 *   <p>:admin                channel dashboard feed: worker and task summary events
 *
 * (i = 0 is written `{q}`.) dead, stats and recent are bookkeeping written after the task's own script.
 */
export interface Keys {
  prefix: string;
  /** Number of queue shards (QUEUE_SHARDS); every server and worker of a fleet must agree. */
  shards: number;
  task(id: string): string;
  events(id: string): string;
  channel(id: string): string;
  /** A server's inbox channel (sid: that server process's random id). */
  inbox(serverId: string): string;
  idem(key: string): string;
  /** Shard i's queue (i defaults to 0). */
  queue(shard?: number): string;
  active(workerId: string, shard?: number): string;
  delayed(shard?: number): string;
  workers: string;
  worker(workerId: string): string;
  /** The fleet's agreed queue shard count. */
  shardCount: string;
  dead: string;
  stats: string;
  recent: string;
  control: string;
  admin: string;
  /** Task id from a per-task channel name, or undefined. */
  idFromChannel(channel: string): string | undefined;
}

export function makeKeys(prefix: string, shards = 1): Keys {
  const p = prefix;
  const chHead = `${p}:ch:{`;
  const q = (i = 0) => `${p}:{q${i === 0 ? "" : i}}`;
  return {
    prefix: p,
    shards,
    task: (id) => `${p}:task:{${id}}`,
    events: (id) => `${p}:events:{${id}}`,
    channel: (id) => `${chHead}${id}}`,
    inbox: (sid) => `${p}:inbox:${sid}`,
    idem: (key) => `${p}:idem:${key}`,
    queue: (i) => `${q(i)}:queue`,
    active: (wid, i) => `${q(i)}:active:${wid}`,
    delayed: (i) => `${q(i)}:delayed`,
    workers: `${q()}:workers`,
    worker: (wid) => `${q()}:worker:${wid}`,
    shardCount: `${q()}:shards`,
    dead: `${p}:dead`,
    stats: `${p}:stats`,
    recent: `${p}:recent`,
    control: `${p}:control`,
    admin: `${p}:admin`,
    idFromChannel: (ch) => (ch.startsWith(chHead) && ch.endsWith("}") ? ch.slice(chHead.length, -1) : undefined),
  };
}
