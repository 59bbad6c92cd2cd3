/** The server's shared services, built once at start-up and handed to every view; close() tears them down in order. */
import type { Server, ServerWebSocket } from "bun";
import { BunInbox } from "./bun-inbox.ts";
import { BunRedis, useBunRedis } from "./bun-redis.ts";
import type { Config } from "./config.ts";
import { Feeds } from "./feeds.ts";
import { type Keys, makeKeys } from "./keys.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { Queue } from "./queue.ts";
import { ClientBuckets } from "./rate-limit.ts";
import { agreeOnShards } from "./shard-count.ts";
import { type EventSubscriber, createEventSubscriber, createRedis, isCluster, waitReady } from "./redis.ts";
import type { Client, ScriptedRedis } from "./scripts.ts";

export interface App {
  config: Config;
  log: Logger;
  keys: Keys;
  redis: ScriptedRedis;
  subscriber: EventSubscriber;
  /** The connection this server's inbox channel is subscribed on (one Redis; none on a cluster): Bun's client where `submits` is. */
  inbox?: Client | BunInbox;
  /** Bun's client, for a submit alone in its turn (one Redis, TASK_REDIS_CLIENT=bun; see Queue.enqueue). */
  submits?: BunRedis;
  queue: Queue;
  feeds: Feeds;
  metrics: Metrics;
  /** Open WebSockets, kept by the router so shutdown can close them with 1001. */
  sockets: Set<ServerWebSocket<any>>;
  /** Set once Bun.serve has started. */
  server?: Server<any>;
  /** POST /tasks's submit limit per client address. */
  httpSubmits: ClientBuckets;
}

export async function createApp(config: Config, log: Logger, startupTimeoutMs = 10_000): Promise<App> {
  const keys = makeKeys(config.TASKWIRE_PREFIX, config.queueShards);
  const redis = createRedis(config.REDIS_URL, "command", log, "taskwire-server");
  const subscriber = createEventSubscriber(config.REDIS_URL, log, "taskwire-server");
  // Bun's client where it can serve (one Redis): a lone submit's script, and each inbox message, cost the server less CPU.
  const native = useBunRedis(config);
  const submits = native ? new BunRedis(config.REDIS_URL, "command", log, "taskwire-server") : undefined;
  // No inbox on a cluster: a PUBLISH there is broadcast to every node, so tasks submitted here use their own shard channel.
  const bunInbox = native ? new BunInbox(config.REDIS_URL, log, "taskwire-server") : undefined;
  const ioInbox = isCluster(redis) || bunInbox ? undefined : createRedis(config.REDIS_URL, "inbox", log, "taskwire-server");
  try {
    await Promise.all([
      ...[redis, subscriber, ...(ioInbox ? [ioInbox] : [])].map((c) => waitReady(c, startupTimeoutMs)),
      submits?.connect(startupTimeoutMs),
      bunInbox?.connect(startupTimeoutMs),
    ]);
  } catch (err) {
    submits?.close();
    bunInbox?.disconnect();
    throw err;
  }
  const inbox = bunInbox ?? ioInbox;
  await agreeOnShards(redis, keys);
  const queue = new Queue(redis, keys, { ttlS: config.RESULT_TTL_S, maxArgsBytes: config.MAX_ARGS_BYTES }, log, submits);
  const feeds = new Feeds(subscriber, queue, keys, log, inbox);
  await feeds.ready(); // a submit names the inbox only once it is heard
  const httpSubmits = new ClientBuckets(config.SUBMIT_RATE_PER_CLIENT, config.SUBMIT_BURST_PER_CLIENT);
  return { config, log, keys, redis, subscriber, inbox, submits, queue, feeds, metrics: new Metrics(), sockets: new Set(), httpSubmits };
}

/** How long shutdown lets close frames reach clients before it cuts what is still open (SSE streams). */
const CLOSE_WAIT_MS = 1_000;

export async function closeApp(app: App): Promise<void> {
  try {
    void app.server?.stop(); // stop accepting; open connections are ended below
  } catch {}
  for (const ws of app.sockets) ws.close(1001, "server shutting down");
  const deadline = Date.now() + CLOSE_WAIT_MS;
  while (app.sockets.size > 0 && Date.now() < deadline) await Bun.sleep(20);
  try {
    await app.server?.stop(true);
  } catch {}
  await app.queue.flushCounts();
  for (const c of [app.subscriber, ...(app.inbox ? [app.inbox] : []), app.redis]) {
    try {
      await c.quit();
    } catch {
      c.disconnect();
    }
  }
  app.submits?.close();
}
