/**
 * Creates taskwire's Redis clients, one per role: `command` (scripts and reads), `blocking` (BLMOVE:
 * never times a request out), `subscriber` (pub/sub) and `inbox` (a server's inbox channel, one Redis
 * only), on one Redis or on a Redis Cluster (ioredis `Cluster`, from a redis+cluster:// URL). Every client
 * reconnects by itself with backoff. A unix:// URL reaches a Redis on this machine through its socket,
 * which costs Redis a little less CPU per command than loopback TCP (bench/NOTES.md).
 */
import "./tracing-channel-fix.ts";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { parseClusterUrl, parseUnixUrl } from "./config.ts";
import type { Logger } from "./log.ts";
import { type Client, type ScriptedRedis, withScripts } from "./scripts.ts";
import { ShardSubscriber } from "./shard-subscriber.ts";

export type Role = "command" | "blocking" | "subscriber" | "inbox";

/** Longest pause between two reconnect attempts: a client is back at most this long after Redis is. */
export const RECONNECT_MAX_MS = 2_000;

const backoff = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), RECONNECT_MAX_MS);

export function createRedis(url: string, role: Role, log: Logger, name: string): ScriptedRedis {
  const options: RedisOptions = {
    connectionName: `${name}:${role}`,
    // Capped exponential backoff: reconnect fast after a blip, without hammering a Redis that is down.
    retryStrategy: backoff,
    // Commands fail at once while Redis is down, so a submit gets `unavailable` instead of hanging.
    // Scripts are idempotent by id, so the one resend of an unanswered command is safe.
    enableOfflineQueue: role !== "command",
    maxRetriesPerRequest: role === "blocking" ? null : 1,
  };
  const target = parseClusterUrl(url);
  const socket = parseUnixUrl(url);
  const client: Client = target
    ? new Cluster(target.nodes, {
        clusterRetryStrategy: backoff,
        enableOfflineQueue: options.enableOfflineQueue,
        redisOptions: {
          connectionName: options.connectionName, maxRetriesPerRequest: options.maxRetriesPerRequest,
          username: target.username, password: target.password, tls: target.tls ? {} : undefined,
        },
      })
    : socket ? new Redis({ ...options, ...socket }) : new Redis(url, options);
  const scripted = withScripts(client);
  let down = false;
  client.on("error", (err: Error) => {
    if (!down) log.warn(`redis ${role} connection error: ${err.message}`);
    down = true;
  });
  client.on("ready", () => {
    if (down) log.info(`redis ${role} connection restored`);
    down = false;
  });
  return scripted;
}

/** What task events are heard on: the subscriber client itself on one Redis; on a cluster a ShardSubscriber (one connection per master). */
export type EventSubscriber = Client | ShardSubscriber;

export function createEventSubscriber(url: string, log: Logger, name: string): EventSubscriber {
  const client = createRedis(url, "subscriber", log, name);
  const target = parseClusterUrl(url);
  return target && isCluster(client) ? new ShardSubscriber(client, target, name, log) : client;
}

export function isCluster(c: unknown): c is Cluster {
  return c instanceof Cluster;
}

/** One command of a sequence, issued on the client (cluster) or on a pipeline (one Redis). */
export type Step = (r: ScriptedRedis) => unknown;

/**
 * Runs commands that must take effect in this order (e.g. write a task, then queue its id). On one
 * Redis they go out as one pipeline, which Redis runs in the order sent: one write, one round trip.
 * On a cluster they may reach different nodes, so each waits for the one before. Resolves to each
 * step's result; the first failure rejects (on one Redis, later steps may still have run: every
 * sequence here is safe to stop after any prefix, and to run again).
 */
export async function inOrder(c: ScriptedRedis, steps: Step[]): Promise<unknown[]> {
  if (!isCluster(c)) return pipelined(c, steps);
  const out: unknown[] = [];
  for (const s of steps) out.push(await s(c));
  return out;
}

/** Commands whose order does not matter: one pipeline on one Redis; on a cluster all at once, each routed to its node. */
export async function together(c: ScriptedRedis, steps: Step[]): Promise<unknown[]> {
  if (!isCluster(c)) return pipelined(c, steps);
  return Promise.all(steps.map((s) => s(c)));
}

async function pipelined(c: ScriptedRedis, steps: Step[]): Promise<unknown[]> {
  if (steps.length === 1) return [await steps[0]!(c)]; // a pipeline of one costs more than the command
  const p = c.pipeline();
  for (const s of steps) s(p as unknown as ScriptedRedis); // a pipeline has every command and script the client has
  const res = await p.exec();
  if (!res) throw new Error("pipeline aborted");
  return res.map(([err, v]) => {
    if (err) throw err;
    return v;
  });
}

/** Resolves once the client is ready; rejects if Redis has not answered within timeoutMs. */
export function waitReady(client: Client | ShardSubscriber, timeoutMs: number): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      client.off("ready", onReady);
      reject(new Error(`Redis did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    client.once("ready", onReady);
  });
}
