/**
 * Every Redis key and channel taskwire uses, all under one prefix. Per-task keys carry the task id as a
 * hash tag so a task's keys share one cluster slot; queue keys share the `{q}` tag with the processing
 * lists so BLMOVE between them stays on one slot.
 *
 *   <p>:task:{id}          hash   state, task, args, attempts, seq, result/error, timestamps   TTL result TTL
 *   <p>:events:{id}        list   the task's event frames; frame n (seq n) is at index n-1     TTL result TTL
 *   <p>:ch:{id}            pubsub "<seq> <frame>" for every event appended to events:{id}
 *   <p>:idem:<key>         string task id for an idempotency key                               TTL result TTL
 *   <p>:{q}:queue          list   task ids waiting (LPUSH in, taken from the right)
 *   <p>:{q}:active:<wid>   list   task ids a worker has claimed (reliable-queue processing list)
 *   <p>:{q}:delayed        zset   task ids waiting for a retry, scored by due time (ms)
 *   <p>:{q}:workers        zset   worker ids scored by last heartbeat (ms)
 *   <p>:worker:<wid>       string JSON: host, pid, concurrency, running ids                    TTL dead-after
 *   <p>:dead               list   ids of tasks that ended `exhausted` (newest first, capped)
 *   <p>:stats              hash   counters "<outcome>:<task>" for /metrics across the fleet
 *   <p>:recent             list   ids of recently finished tasks for the dashboard (capped)
 *   <p>:control            pubsub "cancel <id>" to workers
 *   <p>:admin              pubsub dashboard feed: worker and task summary events
 */
export interface Keys {
  prefix: string;
  task(id: string): string;
  events(id: string): string;
  channel(id: string): string;
  idem(key: string): string;
  queue: string;
  active(workerId: string): string;
  delayed: string;
  workers: string;
  worker(workerId: string): string;
  dead: string;
  stats: string;
  recent: string;
  control: string;
  admin: string;
  /** Task id from a per-task channel name, or undefined. */
  idFromChannel(channel: string): string | undefined;
}

export function makeKeys(prefix: string): Keys {
  const p = prefix;
  const chHead = `${p}:ch:{`;
  return {
    prefix: p,
    task: (id) => `${p}:task:{${id}}`,
    events: (id) => `${p}:events:{${id}}`,
    channel: (id) => `${chHead}${id}}`,
    idem: (key) => `${p}:idem:${key}`,
    queue: `${p}:{q}:queue`,
    active: (wid) => `${p}:{q}:active:${wid}`,
    delayed: `${p}:{q}:delayed`,
    workers: `${p}:{q}:workers`,
    worker: (wid) => `${p}:worker:${wid}`,
    dead: `${p}:dead`,
    stats: `${p}:stats`,
    recent: `${p}:recent`,
    control: `${p}:control`,
    admin: `${p}:admin`,
    idFromChannel: (ch) => (ch.startsWith(chHead) && ch.endsWith("}") ? ch.slice(chHead.length, -1) : undefined),
  };
}
