/**
 * What the BullMQ baseline's server and worker share: the queue's name and the Redis connection, read from
 * REDIS_URL (redis://host:port or unix:///path, as taskwire's). One place, so both reach the same queue.
 */
// The fix taskwire applies to its own ioredis (Bun's TracingChannel lacks hasSubscribers): without it
// every BullMQ command would also pay for tracing nobody listens to, and the baseline would lose for a
// reason that is not BullMQ's.
import "../../lib/tracing-channel-fix.ts";
import { parseUnixUrl } from "../../lib/config.ts";

export const QUEUE = "bench";

export function connection(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const unix = parseUnixUrl(url);
  if (unix) return { path: unix.path, ...extra };
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379), ...extra };
}
