/**
 * Loads the Lua scripts in lib/lua/ into an ioredis client (single Redis or Cluster) as typed commands
 * (EVALSHA, EVAL on NOSCRIPT). Each script touches only the keys it declares, all in one slot, except
 * twTakeStart and twEnqueueQueued, which only a single Redis runs (see take_start.lua, enqueue.lua).
 */
import type { Cluster, Redis } from "ioredis";
import beat from "./lua/beat.lua" with { type: "text" };
import cancel from "./lua/cancel.lua" with { type: "text" };
import clock from "./lua/clock.lua" with { type: "text" };
import delay from "./lua/delay.lua" with { type: "text" };
import enqueue from "./lua/enqueue.lua" with { type: "text" };
import finish from "./lua/finish.lua" with { type: "text" };
import finishMany from "./lua/finish_many.lua" with { type: "text" };
import prelude from "./lua/prelude.lua" with { type: "text" };
import progress from "./lua/progress.lua" with { type: "text" };
import promote from "./lua/promote.lua" with { type: "text" };
import registry from "./lua/registry.lua" with { type: "text" };
import requeue from "./lua/requeue.lua" with { type: "text" };
import retry from "./lua/retry.lua" with { type: "text" };
import start from "./lua/start.lua" with { type: "text" };
import starting from "./lua/starting.lua" with { type: "text" };
import take from "./lua/take.lua" with { type: "text" };
import takeStart from "./lua/take_start.lua" with { type: "text" };

export type Arg = string | number;
type Cmd<R> = (...args: Arg[]) => Promise<R>;

export interface Scripts {
  twEnqueue: Cmd<[0 | 1, string]>;
  /** One Redis only: twEnqueue and the push onto a queue shard in one script (see enqueue.lua). */
  twEnqueueQueued: Cmd<[0 | 1, string]>;
  twTake: Cmd<string[]>;
  twStart: Cmd<[string, string, string, number, string] | null | "ours">;
  /** One Redis only: [taken, already ours (see starting.lua), then id, task, args, opts, attempt for each started]. */
  twTakeStart: Cmd<(string | number)[]>;
  twProgress: Cmd<number>;
  twFinish: Cmd<number>;
  /** One Redis only: twFinish for several tasks (see finish_many.lua). */
  twFinishMany: Cmd<number[]>;
  twRetry: Cmd<number>;
  twCancel: Cmd<[string, string]>;
  twRequeue: Cmd<[string, string]>;
  twDelay: Cmd<number>;
  twPromote: Cmd<number>;
  twBeat: Cmd<number>;
  /** [Redis's now (ms), [id, last beat, ...] live, [id, last beat, ...] silent (newest first)]. */
  twRegistry: Cmd<[number, string[], string[]]>;
}

export type Client = Redis | Cluster;
export type ScriptedRedis = Client & Scripts;

// Every time a script stores or compares comes from Redis's clock (clock.lua), never the caller's.
const definitions: Record<keyof Scripts, { keys: number; lua: string }> = {
  twEnqueue: { keys: 1, lua: clock + enqueue },
  twEnqueueQueued: { keys: 2, lua: clock + enqueue },
  twTake: { keys: 2, lua: take },
  twStart: { keys: 2, lua: clock + starting + start },
  twTakeStart: { keys: 2, lua: clock + starting + takeStart },
  twProgress: { keys: 3, lua: clock + prelude + progress },
  twFinish: { keys: 3, lua: clock + prelude + finish },
  twFinishMany: { keys: 0, lua: clock + prelude + finishMany },
  twRetry: { keys: 3, lua: clock + prelude + retry },
  twCancel: { keys: 3, lua: clock + prelude + cancel },
  twRequeue: { keys: 3, lua: clock + prelude + requeue },
  twDelay: { keys: 1, lua: clock + delay },
  twPromote: { keys: 2, lua: clock + promote },
  twBeat: { keys: 2, lua: clock + beat },
  twRegistry: { keys: 1, lua: clock + registry },
};

/**
 * Runs one script by name with its keys, then its args. Calls issued in one turn take effect in the order
 * issued (one connection: a Batch's pipeline, or Bun's client, lib/bun-redis.ts).
 */
export type RunScript = <K extends keyof Scripts>(name: K, keys: readonly Arg[], args: readonly Arg[]) => ReturnType<Scripts[K]>;

/** A script's Lua, as sent to Redis. */
export function scriptSource(name: keyof Scripts): string {
  return definitions[name].lua;
}

export function withScripts<C extends Client>(redis: C): C & Scripts {
  for (const [name, d] of Object.entries(definitions)) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: d.keys, lua: d.lua });
  }
  return redis as C & Scripts;
}
