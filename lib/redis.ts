/**
 * Creates taskwire's Redis clients, one per role: `command` (scripts and reads), `blocking` (BLMOVE:
 * never times a request out) and `subscriber` (pub/sub). Every client reconnects by itself with backoff.
 */
import Redis, { type RedisOptions } from "ioredis";
import type { Logger } from "./log.ts";
import { type ScriptedRedis, withScripts } from "./scripts.ts";

export type Role = "command" | "blocking" | "subscriber";

/** Longest pause between two reconnect attempts: a client is back at most this long after Redis is. */
export const RECONNECT_MAX_MS = 2_000;

export function createRedis(url: string, role: Role, log: Logger, name: string): ScriptedRedis {
  const options: RedisOptions = {
    connectionName: `${name}:${role}`,
    // Capped exponential backoff: reconnect fast after a blip, without hammering a Redis that is down.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), RECONNECT_MAX_MS),
    // Commands fail at once while Redis is down, so a submit gets `unavailable` instead of hanging.
    // Scripts are idempotent by id, so the one resend of an unanswered command is safe.
    enableOfflineQueue: role !== "command",
    maxRetriesPerRequest: role === "blocking" ? null : 1,
  };
  const client = withScripts(new Redis(url, options));
  let down = false;
  client.on("error", (err: Error) => {
    if (!down) log.warn(`redis ${role} connection error: ${err.message}`);
    down = true;
  });
  client.on("ready", () => {
    if (down) log.info(`redis ${role} connection restored`);
    down = false;
  });
  return client;
}

/** Resolves once the client is ready; rejects if Redis has not answered within timeoutMs. */
export function waitReady(client: Redis, timeoutMs: number): Promise<void> {
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
