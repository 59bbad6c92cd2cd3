/**
 * Hand-off to parked workers (one Redis; lib/lua/handing.lua): the arguments its scripts take to find a
 * parked worker's keys, and the entries a worker gets.
 */
import type { Keys } from "./keys.ts";

/** A task a worker started: id, task name, args JSON, options JSON, attempt. */
export type Started = [string, string, string, string, number];

/**
 * The parked set and the task, events, processing-list and hand-off "heads" of a shard, as dispatch.lua
 * and promote.lua take them after the ttl; on a cluster ("" parked set) they only queue.
 */
export function handoffArgs(k: Keys, shard: number, single: boolean): string[] {
  if (!single) return ["", "", "", "", ""];
  return [k.parked(shard), k.task("").slice(0, -1), k.events("").slice(0, -1), k.active("", shard), k.handoff("", shard)];
}

/** "<id>\n<task>\n<attempt>\n<options JSON>\n<args JSON>" (handing.lua's handoff_entry). */
export function parseHandoff(entry: string): Started {
  const a = entry.indexOf("\n");
  const b = entry.indexOf("\n", a + 1);
  const c = entry.indexOf("\n", b + 1);
  const d = entry.indexOf("\n", c + 1);
  return [entry.slice(0, a), entry.slice(a + 1, b), entry.slice(d + 1), entry.slice(c + 1, d), Number(entry.slice(b + 1, c))];
}
