/** Loads the Lua scripts in lib/lua/ into an ioredis client as typed commands (EVALSHA, EVAL on NOSCRIPT). */
import type Redis from "ioredis";
import cancel from "./lua/cancel.lua" with { type: "text" };
import claim from "./lua/claim.lua" with { type: "text" };
import enqueue from "./lua/enqueue.lua" with { type: "text" };
import finish from "./lua/finish.lua" with { type: "text" };
import prelude from "./lua/prelude.lua" with { type: "text" };
import progress from "./lua/progress.lua" with { type: "text" };
import promote from "./lua/promote.lua" with { type: "text" };
import requeue from "./lua/requeue.lua" with { type: "text" };
import retry from "./lua/retry.lua" with { type: "text" };

type Arg = string | number;
type Cmd<R> = (...args: Arg[]) => Promise<R>;

export interface Scripts {
  twEnqueue: Cmd<[0 | 1, string]>;
  twClaim: Cmd<[string, string, string, string, number, string][]>;
  twProgress: Cmd<number>;
  twFinish: Cmd<number>;
  twRetry: Cmd<number>;
  twCancel: Cmd<string>;
  twRequeue: Cmd<number>;
  twPromote: Cmd<number>;
}

export type ScriptedRedis = Redis & Scripts;

const definitions: Record<keyof Scripts, { keys: number; lua: string }> = {
  twEnqueue: { keys: 4, lua: enqueue },
  twClaim: { keys: 2, lua: claim },
  twProgress: { keys: 2, lua: prelude + progress },
  twFinish: { keys: 5, lua: prelude + finish },
  twRetry: { keys: 4, lua: prelude + retry },
  twCancel: { keys: 3, lua: prelude + cancel },
  twRequeue: { keys: 7, lua: prelude + requeue },
  twPromote: { keys: 2, lua: promote },
};

export function withScripts(redis: Redis): ScriptedRedis {
  for (const [name, d] of Object.entries(definitions)) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: d.keys, lua: d.lua });
  }
  return redis as ScriptedRedis;
}
